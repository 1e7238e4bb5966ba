/* The agent workflow builder: the graph (apps/agents/graph.schema.json) on a Drawflow canvas.
   Nodes are Drawflow nodes, edges are connections (one per pair of nodes); the side panel
   edits the selected node and its outgoing edges. "Save draft" and "Publish" post the graph;
   the server's problems (apps.agents.graph.graph_problems) are shown on their nodes. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const csrf = (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value;
  const PORTS = {start: [0, 1], conversation: [1, 1], end: [1, 0], transfer: [1, 0], global: [0, 0]};
  const graph = data.graph && data.graph.nodes ? data.graph : {version: 1, nodes: [], edges: []};
  graph.edges = graph.edges || [];
  const byId = {};      // graph node id -> node object
  const dfOf = {};      // graph node id -> drawflow id
  const idOf = {};      // drawflow id -> graph node id
  let problems = data.problems || [];
  let selected = null;
  let loading = true;

  const editor = new Drawflow(document.getElementById("canvas"));
  editor.reroute = false;
  editor.start();
  if (!data.editable) editor.editor_mode = "fixed";

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  function nodeHtml(node) {
    const mine = problems.filter((p) => p.node === node.id);
    return '<div class="node-type">' + esc(node.type) + "</div><strong>" + esc(node.name || node.id) + "</strong>" +
      (mine.length ? '<ul class="node-problems">' + mine.map((p) => "<li>" + esc(p.message) + "</li>").join("") + "</ul>" : "");
  }
  function redraw(node) {
    const element = document.querySelector("#node-" + dfOf[node.id] + " .drawflow_content_node");
    if (element) element.innerHTML = nodeHtml(node);
    const box = document.getElementById("node-" + dfOf[node.id]);
    if (box) box.classList.toggle("has-problems", problems.some((p) => p.node === node.id));
  }
  function addToCanvas(node) {
    const [inputs, outputs] = PORTS[node.type] || [1, 1];
    const position = node.position || {x: 60, y: 60};
    const dfId = editor.addNode(node.id, inputs, outputs, position.x, position.y, "graph-node " + node.type, {}, nodeHtml(node));
    byId[node.id] = node; dfOf[node.id] = dfId; idOf[dfId] = node.id;
    redraw(node);
  }
  function showProblems() {
    Object.values(byId).forEach(redraw);
    const list = document.getElementById("graph-problems");
    list.innerHTML = problems.filter((p) => !p.node).map((p) => "<li>" + esc(p.message) + "</li>").join("");
  }

  graph.nodes.forEach(addToCanvas);
  graph.edges.forEach((edge) => {
    if (dfOf[edge.from] !== undefined && dfOf[edge.to] !== undefined) {
      editor.addConnection(dfOf[edge.from], dfOf[edge.to], "output_1", "input_1");
    }
  });
  loading = false;
  showProblems();

  editor.on("connectionCreated", (c) => {
    if (loading) return;
    const from = idOf[c.output_id], to = idOf[c.input_id];
    if (!graph.edges.some((e) => e.from === from && e.to === to)) {
      let n = graph.edges.length + 1;
      while (graph.edges.some((e) => e.id === "e" + n)) n += 1;
      graph.edges.push({id: "e" + n, from: from, to: to, condition: ""});
    }
    if (selected === from) panel(from);
  });
  editor.on("connectionRemoved", (c) => {
    const from = idOf[c.output_id], to = idOf[c.input_id];
    graph.edges = graph.edges.filter((e) => !(e.from === from && e.to === to));
    if (selected === from) panel(from);
  });
  editor.on("nodeRemoved", (dfId) => {
    const id = idOf[dfId];
    delete byId[id]; delete dfOf[id]; delete idOf[dfId];
    graph.edges = graph.edges.filter((e) => e.from !== id && e.to !== id);
    if (selected === id) { selected = null; document.getElementById("panel").innerHTML = ""; }
  });
  editor.on("nodeSelected", (dfId) => panel(idOf[dfId]));

  function field(label, key, value, kind) {
    const input = kind === "textarea"
      ? '<textarea rows="4" data-key="' + key + '">' + esc(value) + "</textarea>"
      : '<input type="text" data-key="' + key + '" value="' + esc(value) + '">';
    return "<label>" + esc(label) + input + "</label>";
  }
  function panel(id) {
    selected = id;
    const node = byId[id];
    const el = document.getElementById("panel");
    if (!node) { el.innerHTML = ""; return; }
    let html = "<h3>" + esc(node.type) + " node</h3>" + field("Id", "id", node.id) + field("Name", "name", node.name || "");
    if (node.type === "start") html += field("Greeting", "greeting", node.greeting || "", "textarea");
    if (["start", "conversation", "global"].includes(node.type)) html += field("Prompt", "prompt", node.prompt || "", "textarea");
    if (["start", "conversation"].includes(node.type)) {
      html += "<fieldset><legend>Tools</legend>" + data.tools.map((t) =>
        '<label><input type="checkbox" data-tool="' + esc(t) + '"' + ((node.tools || []).includes(t) ? " checked" : "") + "> " + esc(t) + "</label>").join("") + "</fieldset>";
      const interrupt = node.allow_interruptions === undefined ? "" : String(node.allow_interruptions);
      html += '<label>Caller may interrupt<select data-key="allow_interruptions">' +
        [["", "as the agent"], ["true", "yes"], ["false", "no"]].map(([v, l]) =>
          '<option value="' + v + '"' + (v === interrupt ? " selected" : "") + ">" + l + "</option>").join("") + "</select></label>";
      html += field("Variables to extract (name: description, one per line)", "extract",
        (node.extract || []).map((x) => x.name + (x.description ? ": " + x.description : "")).join("\n"), "textarea");
    }
    if (node.type === "start") {
      const fetch = node.pre_call_fetch || {};
      html += field("Pre-call fetch URL (blank: none)", "fetch_url", fetch.url || "") +
        field("Pre-call fetch timeout (s)", "fetch_timeout", fetch.timeout_secs || 2) +
        field("Variables the fetch returns (comma-separated)", "fetch_variables", (fetch.variables || []).join(", "));
    }
    if (node.type === "transfer") html += field("Transfer number (E.164)", "transfer_number", node.transfer_number || "");
    if (["end", "transfer"].includes(node.type)) html += field("Line said first", "line", node.line || "", "textarea");
    const outgoing = graph.edges.filter((e) => e.from === id);
    if (outgoing.length) {
      html += "<h4>Edges</h4>" + outgoing.map((e) => '<div class="edge-box" data-edge="' + esc(e.id) + '"><strong>→ ' + esc(e.to) + "</strong>" +
        (problems.filter((p) => p.edge === e.id).map((p) => '<p class="errorlist">' + esc(p.message) + "</p>").join("")) +
        field("Condition (the LLM takes this edge when…)", "condition", e.condition || "", "textarea") +
        field("Function name (blank: go_to_" + e.to + ")", "name", e.name || "") +
        field("Transition line", "transition_line", e.transition_line || "") + "</div>").join("");
    }
    el.innerHTML = html;
    el.querySelectorAll("input, textarea, select").forEach((input) => {
      if (!data.editable) { input.disabled = true; return; }
      input.addEventListener("change", () => edit(node, input));
    });
  }
  function edit(node, input) {
    const edgeBox = input.closest("[data-edge]");
    if (edgeBox) {
      const edge = graph.edges.find((e) => e.id === edgeBox.dataset.edge);
      if (input.value) edge[input.dataset.key] = input.value; else if (input.dataset.key !== "condition") delete edge[input.dataset.key]; else edge.condition = "";
      return;
    }
    if (input.dataset.tool) {
      const tools = new Set(node.tools || []);
      if (input.checked) tools.add(input.dataset.tool); else tools.delete(input.dataset.tool);
      node.tools = Array.from(tools);
      return;
    }
    const key = input.dataset.key, value = input.value;
    if (key === "id") {
      if (!value || byId[value]) { input.value = node.id; return; }
      const old = node.id, dfId = dfOf[old];
      graph.edges.forEach((e) => { if (e.from === old) e.from = value; if (e.to === old) e.to = value; });
      delete byId[old]; delete dfOf[old];
      node.id = value; byId[value] = node; dfOf[value] = dfId; idOf[dfId] = value; selected = value;
    } else if (key === "allow_interruptions") {
      if (value === "") delete node.allow_interruptions; else node.allow_interruptions = value === "true";
    } else if (key === "extract") {
      node.extract = value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
        const [name, ...rest] = line.split(":");
        return rest.length ? {name: name.trim(), description: rest.join(":").trim()} : {name: name.trim()};
      });
    } else if (key.startsWith("fetch_")) {
      const fetch = node.pre_call_fetch || {};
      if (key === "fetch_url") fetch.url = value;
      if (key === "fetch_timeout") fetch.timeout_secs = parseFloat(value) || 2;
      if (key === "fetch_variables") fetch.variables = value.split(",").map((v) => v.trim()).filter(Boolean);
      if (fetch.url) node.pre_call_fetch = fetch; else delete node.pre_call_fetch;
    } else if (value) {
      node[key] = value;
    } else {
      delete node[key];
    }
    redraw(node);
  }

  function serialise() {
    const nodes = Object.values(byId).map((node) => {
      const drawn = editor.getNodeFromId(dfOf[node.id]);
      return Object.assign({}, node, {position: {x: Math.round(drawn.pos_x), y: Math.round(drawn.pos_y)}});
    });
    return {version: 1, nodes: nodes, edges: graph.edges};
  }
  async function post(url, body) {
    const status = document.getElementById("builder-status");
    status.textContent = "…";
    const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(body), credentials: "same-origin"});
    const answer = await response.json().catch(() => ({error: "The server answered " + response.status + "."}));
    problems = answer.problems || [];
    showProblems();
    if (selected) panel(selected);
    if (answer.published) status.textContent = "Published as version " + answer.version + ".";
    else if (answer.saved) status.textContent = problems.length ? "Draft saved with " + problems.length + " problem(s) to fix before publishing." : "Draft saved.";
    else status.textContent = answer.error || "Not saved.";
    return answer;
  }
  if (data.editable) {
    document.getElementById("add-node").addEventListener("click", () => {
      const type = document.getElementById("new-node-type").value;
      let n = 1;
      while (byId[type + "_" + n]) n += 1;
      const count = Object.keys(byId).length;  // a free spot: columns of five to the right of the start
      const node = {id: type + "_" + n, type: type, name: type + " " + n,
        position: {x: 300 + 240 * Math.floor(count / 5), y: 30 + 100 * (count % 5)}};
      if (type === "conversation" || type === "start") { node.prompt = ""; node.tools = []; }
      addToCanvas(node);
      panel(node.id);
    });
    document.getElementById("save-draft").addEventListener("click", () => post(data.draft_url, serialise()));
    document.getElementById("publish").addEventListener("click", () => post(data.publish_url, serialise()));
  }
  window.switchboardBuilder = {serialise: serialise, editor: editor, graph: graph};
})();
