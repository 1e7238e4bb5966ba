"""An agent's conversation as a graph (pure functions, no ORM).

The shape is documented in `apps/agents/graph.schema.json` (JSON Schema, draft 2020-12):
nodes (one `start`, `conversation` nodes, at most one `global` node whose prompt every
node shares, `transfer` and `end` nodes) and edges whose `condition` the LLM sees as a
function; calling it moves the call along the edge, optionally saying `transition_line`.

`graph_problems` is the one check of a graph's meaning (apps.agents.services.agent_config_problems
calls it); each problem names the node or edge it is about, so the builder can show it there.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

GRAPH_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("graph.schema.json")

NODE_START, NODE_CONVERSATION, NODE_GLOBAL, NODE_TRANSFER, NODE_END = "start", "conversation", "global", "transfer", "end"
NODE_TYPES = (NODE_START, NODE_CONVERSATION, NODE_GLOBAL, NODE_TRANSFER, NODE_END)
SPEAKING_NODES = (NODE_START, NODE_CONVERSATION)  # nodes the LLM talks in
TOOL_END_CALL, TOOL_TRANSFER, TOOL_KNOWLEDGE = "end_call", "transfer_to_human", "search_knowledge_base"
BUILTIN_TOOLS = (TOOL_END_CALL, TOOL_TRANSFER, TOOL_KNOWLEDGE)

# `{{ caller.number }}`: identifiers and dots only (the same placeholders pipecat.flows renders).
VARIABLE = re.compile(r"(\\?)\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
# Every call has these (apps.agents.selectors.call_variables fills them).
BUILTIN_VARIABLES = ("caller.number", "call.direction", "call.from_number", "call.to_number", "now")
# `{{contact.<column>}}`: a campaign contact's extra CSV columns (empty on calls that have none).
CONTACT_NAMESPACE = "contact"
FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class GraphProblem:
    message: str
    node: str | None = None
    edge: str | None = None

    def as_dict(self) -> dict:
        return {"message": self.message, "node": self.node, "edge": self.edge}


def graph_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def variables_in(text: str | None) -> list[str]:
    """The variable names a text refers to, in order (escaped `\\{{x}}` left out)."""
    return [match.group(2) for match in VARIABLE.finditer(text or "") if not match.group(1)]


def render(text: str, variables: dict) -> str:
    """`text` with each `{{ a.b }}` replaced by its value in `variables` ("" when missing)."""

    def value(match: re.Match) -> str:
        if match.group(1):
            return match.group(0)[1:]
        current = variables
        for part in match.group(2).split("."):
            if not isinstance(current, dict) or part not in current:
                return ""
            current = current[part]
        return "" if current is None else str(current)

    return VARIABLE.sub(value, text or "")


def edge_function_name(edge: dict) -> str:
    """What the LLM calls to take `edge`: its own `name`, else `go_to_<target>`."""
    return edge.get("name") or f"go_to_{edge.get('to')}"


def single_prompt_graph(*, system_prompt: str, greeting: str, tools) -> dict:
    """A single-prompt agent as a graph: a global node with the prompt and a start node
    with the greeting and tools; no edges (the caller, end_call or a transfer ends it)."""
    return {
        "version": GRAPH_VERSION,
        "nodes": [
            {"id": "global", "type": NODE_GLOBAL, "name": "Instructions", "prompt": system_prompt or "",
             "position": {"x": 40, "y": 40}},
            {"id": "start", "type": NODE_START, "name": "Start", "greeting": greeting or "", "prompt": "",
             "tools": list(tools or []), "position": {"x": 40, "y": 220}},
        ],
        "edges": [],
    }


def is_single_prompt(graph: dict) -> bool:
    """One speaking node, no edges: what single_prompt_graph makes."""
    nodes = graph.get("nodes") or []
    return not graph.get("edges") and [n.get("type") for n in nodes if n.get("type") != NODE_GLOBAL] == [NODE_START]


def node_of_type(graph: dict, node_type: str) -> dict | None:
    return next((node for node in graph.get("nodes") or [] if node.get("type") == node_type), None)


def declared_variables(graph: dict) -> set[str]:
    """Built-ins, the variables the pre-call fetch promises and every node's extracted variables."""
    names = set(BUILTIN_VARIABLES) | {CONTACT_NAMESPACE}
    for node in graph.get("nodes") or []:
        fetch = node.get("pre_call_fetch") or {}
        names.update(name for name in fetch.get("variables") or [] if isinstance(name, str))
        names.update(item.get("name") for item in node.get("extract") or [] if isinstance(item, dict))
    names.discard(None)
    return names


def _known(name: str, known: set[str]) -> bool:
    # `{{customer}}` and `{{customer.name}}` are both fine when the fetch promises `customer`.
    parts = name.split(".")
    return any(".".join(parts[:i]) in known for i in range(1, len(parts) + 1))


def url_problem(url: str, *, private_hosts_ok: bool = False) -> str | None:
    """What is wrong with a URL the platform will call for a client (tools, pre-call fetch, MCP):
    http(s) with a host, no credentials, and (unless `private_hosts_ok`, for tests and local
    development) no loopback, private, link-local or otherwise internal address: a client must
    not reach into the platform's own network."""
    parts = urlsplit(render(url, {}).replace(" ", ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials (put secrets in the tool's secret headers)"
    if not private_hosts_ok:
        host = parts.hostname.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            internal = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
        else:
            internal = not address.is_global
        if internal:
            return "must point at a public address, not a local or private one"
    return None


def _shape_problems(graph: dict) -> list[GraphProblem]:
    """Types and fields against the documented JSON Schema, each named by where it is."""
    problems = []
    for error in sorted(_validator().iter_errors(graph), key=lambda error: list(error.absolute_path))[:20]:
        path = list(error.absolute_path)
        node = edge = None
        if len(path) >= 2 and path[0] in ("nodes", "edges") and isinstance(path[1], int):
            items = graph.get(path[0]) or []
            item = items[path[1]] if path[1] < len(items) and isinstance(items[path[1]], dict) else {}
            ident = item.get("id") or f"#{path[1] + 1}"
            node, edge = (str(ident), None) if path[0] == "nodes" else (None, str(ident))
            where = f"{'Node' if path[0] == 'nodes' else 'Edge'} '{ident}'" + (
                f" {'.'.join(str(part) for part in path[2:])}" if path[2:] else "")
        else:
            where = "The graph" + (f" {'.'.join(str(part) for part in path)}" if path else "")
        problems.append(GraphProblem(f"{where}: {error.message}", node=node, edge=edge))
    return problems


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        from jsonschema import Draft202012Validator

        _VALIDATOR = Draft202012Validator(graph_schema())
    return _VALIDATOR


MCP_PREFIX = "mcp:"  # a node's tool "mcp:<server>": every tool that MCP server lists


def graph_problems(graph, *, http_tools: dict[str, dict] | None = None, mcp_servers=(),
                   private_hosts_ok: bool = False) -> list[GraphProblem]:
    """What is wrong with `graph`; empty when a call can run it. `http_tools`: the client's
    HTTP tools by name ({name: {"url": ..., "parameters": {...}}}) the nodes may use;
    `mcp_servers`: the names of the client's MCP servers."""
    http_tools = http_tools or {}
    if not isinstance(graph, dict):
        return [GraphProblem("The workflow graph must be a JSON object with nodes and edges.")]
    shape = _shape_problems(graph)
    if shape:
        return shape
    problems: list[GraphProblem] = []
    nodes, edges = graph.get("nodes"), graph.get("edges", [])
    if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
        return [GraphProblem("The graph's nodes must be a list of objects.")]
    if not isinstance(edges, list) or not all(isinstance(edge, dict) for edge in edges):
        return [GraphProblem("The graph's edges must be a list of objects.")]
    if graph.get("version", GRAPH_VERSION) != GRAPH_VERSION:
        problems.append(GraphProblem(f"Unknown graph version {graph.get('version')!r}; this platform reads {GRAPH_VERSION}."))

    by_id: dict[str, dict] = {}
    for position, node in enumerate(nodes):
        node_id = node.get("id")
        if not isinstance(node_id, str) or not VARIABLE_NAME.fullmatch(node_id):
            problems.append(GraphProblem(f"Node #{position + 1} needs an id of letters, digits and _ (at most 64)."))
            continue
        if node_id in by_id:
            problems.append(GraphProblem(f"Two nodes have the id '{node_id}'.", node=node_id))
            continue
        if node.get("type") not in NODE_TYPES:
            problems.append(GraphProblem(f"Node '{node_id}' has type {node.get('type')!r}; use one of "
                                         f"{', '.join(NODE_TYPES)}.", node=node_id))
            continue
        by_id[node_id] = node

    starts = [node_id for node_id, node in by_id.items() if node["type"] == NODE_START]
    if not starts:
        problems.append(GraphProblem("The graph has no start node: add one (it greets the caller)."))
    elif len(starts) > 1:
        problems.append(GraphProblem(f"The graph has {len(starts)} start nodes ({', '.join(starts)}); keep one.",
                                     node=starts[1]))
    globals_ = [node_id for node_id, node in by_id.items() if node["type"] == NODE_GLOBAL]
    if len(globals_) > 1:
        problems.append(GraphProblem("Only one global node is allowed.", node=globals_[1]))

    known = declared_variables(graph)
    outgoing: dict[str, list[dict]] = {node_id: [] for node_id in by_id}
    seen_edges: set[str] = set()
    for position, edge in enumerate(edges):
        edge_id = str(edge.get("id") or f"#{position + 1}")
        if edge_id in seen_edges:
            problems.append(GraphProblem(f"Two edges have the id '{edge_id}'.", edge=edge_id))
        seen_edges.add(edge_id)
        source, target = edge.get("from"), edge.get("to")
        label = f"Edge '{edge_id}' ({source} → {target})"
        if source not in by_id:
            problems.append(GraphProblem(f"{label} starts at a node that does not exist.", edge=edge_id))
            continue
        if target not in by_id:
            problems.append(GraphProblem(f"{label} goes to a node that does not exist.", edge=edge_id, node=source))
            continue
        if by_id[source]["type"] not in SPEAKING_NODES:
            problems.append(GraphProblem(f"{label} leaves a {by_id[source]['type']} node; only start and "
                                         "conversation nodes have edges.", edge=edge_id, node=source))
            continue
        if by_id[target]["type"] in (NODE_START, NODE_GLOBAL):
            problems.append(GraphProblem(f"{label} goes to the {by_id[target]['type']} node; edges cannot.",
                                         edge=edge_id, node=source))
            continue
        if not str(edge.get("condition") or "").strip():
            problems.append(GraphProblem(f"{label} needs a condition (the LLM reads it to decide when to take it).",
                                         edge=edge_id, node=source))
        name = edge_function_name(edge)
        if not FUNCTION_NAME.fullmatch(name):
            problems.append(GraphProblem(f"{label}: the function name '{name}' must be letters, digits, _ or -.",
                                         edge=edge_id, node=source))
        for variable in variables_in(edge.get("transition_line")):
            if not _known(variable, known):
                problems.append(GraphProblem(f"{label}: the transition line uses the unknown variable "
                                             f"{{{{{variable}}}}}.", edge=edge_id, node=source))
        outgoing[source].append(edge)

    for node_id, node in by_id.items():
        kind = node["type"]
        names = [edge_function_name(edge) for edge in outgoing[node_id]]
        tools = node.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(tool, str) for tool in tools):
            problems.append(GraphProblem(f"Node '{node_id}': tools must be a list of tool names.", node=node_id))
            tools = []
        duplicates = sorted({name for name in names + tools if (names + tools).count(name) > 1})
        if duplicates:
            problems.append(GraphProblem(f"Node '{node_id}' offers the function(s) {', '.join(duplicates)} twice; "
                                         "give its edges distinct names.", node=node_id))
        for tool in tools:
            if tool in BUILTIN_TOOLS:
                continue
            if tool.startswith(MCP_PREFIX):
                if tool[len(MCP_PREFIX):] not in mcp_servers:
                    problems.append(GraphProblem(f"Node '{node_id}' uses the MCP server '{tool[len(MCP_PREFIX):]}', "
                                                 "which does not exist; add it under MCP servers or remove it.",
                                                 node=node_id))
                continue
            if tool not in http_tools:
                problems.append(GraphProblem(f"Node '{node_id}' uses the tool '{tool}', which does not exist; "
                                             "create it under HTTP tools or remove it.", node=node_id))
                continue
            parameters = set((http_tools[tool].get("parameters") or {}).get("properties") or {})
            for variable in variables_in(http_tools[tool].get("url")):
                if variable not in parameters and not _known(variable, known):
                    problems.append(GraphProblem(f"Node '{node_id}': the tool '{tool}' URL uses {{{{{variable}}}}}, "
                                                 "which is neither a parameter nor a known variable.", node=node_id))
        for item in node.get("extract") or []:
            if not isinstance(item, dict) or not VARIABLE_NAME.fullmatch(str(item.get("name") or "")):
                problems.append(GraphProblem(f"Node '{node_id}': each extracted variable needs a name of letters, "
                                             "digits and _.", node=node_id))
            elif item["name"] in ("caller", "call", "now", CONTACT_NAMESPACE):
                problems.append(GraphProblem(f"Node '{node_id}': '{item['name']}' is a built-in variable.",
                                             node=node_id))
        fetch = node.get("pre_call_fetch")
        if fetch:
            if kind != NODE_START:
                problems.append(GraphProblem(f"Node '{node_id}': only the start node fetches data before the call.",
                                             node=node_id))
            elif not isinstance(fetch, dict) or url_problem(str(fetch.get("url") or ""),
                                                            private_hosts_ok=private_hosts_ok):
                problem = url_problem(str((fetch or {}).get("url") or ""), private_hosts_ok=private_hosts_ok)
                problems.append(GraphProblem(f"Node '{node_id}': the pre-call fetch URL {problem or 'is missing'}.",
                                             node=node_id))
            else:
                timeout = fetch.get("timeout_secs", 2)
                if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.1 <= timeout <= 10:
                    problems.append(GraphProblem(f"Node '{node_id}': the pre-call fetch timeout must be 0.1-10 s.",
                                                 node=node_id))
        for field in ("prompt", "greeting", "line"):
            for variable in variables_in(node.get(field)):
                if not _known(variable, known):
                    problems.append(GraphProblem(f"Node '{node_id}': the {field} uses the unknown variable "
                                                 f"{{{{{variable}}}}}.", node=node_id))
        if kind == NODE_TRANSFER and not re.fullmatch(r"\+[1-9]\d{1,14}", str(node.get("transfer_number") or "")):
            problems.append(GraphProblem(f"Transfer node '{node_id}' needs a transfer number in E.164 form, "
                                         "e.g. +14155550100.", node=node_id))
        if kind in SPEAKING_NODES and not outgoing[node_id] and TOOL_END_CALL not in tools and not is_single_prompt(graph):
            problems.append(GraphProblem(f"Node '{node_id}' is a dead end: add an edge to an end node (or another "
                                         "node), or give it the end_call tool.", node=node_id))

    if len(starts) == 1:
        reachable, frontier = {starts[0]}, [starts[0]]
        while frontier:
            for edge in outgoing.get(frontier.pop(), []):
                if edge["to"] not in reachable:
                    reachable.add(edge["to"])
                    frontier.append(edge["to"])
        for node_id, node in by_id.items():
            if node["type"] != NODE_GLOBAL and node_id not in reachable:
                problems.append(GraphProblem(f"Node '{node_id}' cannot be reached from the start node.", node=node_id))
    return problems


def graph_diff(old: dict, new: dict) -> list[str]:
    """Human lines saying what changed between two graphs (nodes and edges by id, field by field)."""
    lines: list[str] = []
    for key, label in (("nodes", "node"), ("edges", "edge")):
        before = {item.get("id"): item for item in (old or {}).get(key) or []}
        after = {item.get("id"): item for item in (new or {}).get(key) or []}
        for item_id in after.keys() - before.keys():
            lines.append(f"+ {label} {item_id}")
        for item_id in before.keys() - after.keys():
            lines.append(f"- {label} {item_id}")
        for item_id in sorted(before.keys() & after.keys(), key=str):
            for field in sorted(set(before[item_id]) | set(after[item_id])):
                if field == "position":
                    continue
                if before[item_id].get(field) != after[item_id].get(field):
                    lines.append(f"~ {label} {item_id}.{field}: {json.dumps(before[item_id].get(field))} → "
                                 f"{json.dumps(after[item_id].get(field))}")
    return sorted(lines, key=lambda line: (line[2:], line[0]))
