// "Talk to this agent": a browser test call over the call websocket (apps/voice/browser_media.py).
// The page asks the portal for a test call (its id and single-use token), opens /ws/test-call/,
// sends the microphone as 16-bit PCM at the pipeline's rate, plays the agent's PCM as it arrives,
// and shows each turn's transcript and latencies as the server reports them.
(function () {
  "use strict";
  var root = document.getElementById("talk");
  if (!root) return;
  var startButton = document.getElementById("talk-start");
  var stopButton = document.getElementById("talk-stop");
  var statusText = document.getElementById("talk-status");
  var transcript = document.getElementById("talk-transcript");
  var latencyRows = document.querySelector("#talk-latency tbody");
  var audioMs = document.getElementById("talk-audio-ms");
  var callLink = document.getElementById("talk-call-link");
  var csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  // What the page saw, for people and for the browser test.
  var stats = window.talkStats = {audioBytes: 0, audioMs: 0, turns: {}, ended: null, closeCode: null};
  var socket = null, context = null, stream = null, capture = null, source = null;
  var sampleRate = parseInt(root.dataset.sampleRate, 10);
  var playing = [];  // scheduled agent audio, stopped on a barge-in ("clear")
  var playAt = 0;

  function setStatus(text) { statusText.textContent = text; }

  function ms(value) { return value === null || value === undefined ? "—" : value + " ms"; }

  function line(turn, who, text) {
    var id = "turn-" + turn + "-" + who;
    var item = document.getElementById(id);
    if (!text) return;
    if (!item) {
      item = document.createElement("li");
      item.id = id;
      item.className = "said " + who;
      var label = document.createElement("span");
      label.className = "who";
      label.textContent = who === "agent" ? "Agent:" : "You:";
      item.appendChild(label);
      item.appendChild(document.createElement("span")).className = "text";
      // Within a turn the caller speaks before the agent answers.
      var agentLine = who === "caller" && document.getElementById("turn-" + turn + "-agent");
      transcript.insertBefore(item, agentLine || null);
    }
    item.querySelector(".text").textContent = text;
    transcript.scrollTop = transcript.scrollHeight;
  }

  function latency(turn) {
    var id = "latency-" + turn.index;
    var row = document.getElementById(id);
    if (!row) {
      row = latencyRows.insertRow(-1);
      row.id = id;
      for (var i = 0; i < 5; i++) row.insertCell(-1).className = i ? "num" : "";
    }
    var cells = [turn.index, ms(turn.stt_final_ms), ms(turn.llm_ttft_ms), ms(turn.tts_ttfb_ms),
                 ms(turn.voice_to_voice_ms)];
    cells.forEach(function (text, i) { row.cells[i].textContent = text; });
  }

  function onEvent(event) {
    if (event.event === "turn") {
      stats.turns[event.index] = event;
      line(event.index, "caller", event.user_text);
      line(event.index, "agent", event.bot_text);
      latency(event);
    } else if (event.event === "clear") {
      playing.forEach(function (node) { try { node.stop(); } catch (e) { /* already over */ } });
      playing = [];
      playAt = 0;
    } else if (event.event === "ended") {
      stats.ended = event.end_reason;
      setStatus("Call ended (" + event.end_reason.replace(/_/g, " ") + ")." + (event.error ? " " + event.error : ""));
    }
  }

  function play(buffer) {
    var pcm = new Int16Array(buffer);
    if (!pcm.length) return;
    stats.audioBytes += buffer.byteLength;
    stats.audioMs = Math.round(stats.audioBytes / 2 / sampleRate * 1000);
    audioMs.textContent = stats.audioMs;
    var audio = context.createBuffer(1, pcm.length, sampleRate);
    var samples = audio.getChannelData(0);
    for (var i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
    var node = context.createBufferSource();
    node.buffer = audio;
    node.connect(context.destination);
    playAt = Math.max(playAt, context.currentTime + 0.05);
    node.start(playAt);
    playAt += audio.duration;
    playing.push(node);
    node.onended = function () { playing = playing.filter(function (n) { return n !== node; }); };
  }

  function stopMicrophone() {
    if (capture) { capture.port.onmessage = null; capture.disconnect(); capture = null; }
    if (source) { source.disconnect(); source = null; }
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); stream = null; }
  }

  function finished(code) {
    stats.closeCode = code;
    stopMicrophone();
    startButton.disabled = false;
    stopButton.disabled = true;
    if (!stats.ended) setStatus(code === 1000 ? "Call ended." : "Disconnected (" + code + ").");
  }

  async function start() {
    startButton.disabled = true;
    stats.ended = null;
    transcript.innerHTML = "";
    latencyRows.innerHTML = "";
    setStatus("Starting…");
    try {
      var response = await fetch(root.dataset.startUrl, {
        method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf},
      });
      var ticket = await response.json();
      if (!response.ok) throw new Error(ticket.error || response.statusText);
      context = context || new AudioContext();
      await context.resume();
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false},
      });
      await context.audioWorklet.addModule(root.dataset.workletUrl);
      source = context.createMediaStreamSource(stream);
      capture = new AudioWorkletNode(context, "microphone-capture", {
        processorOptions: {targetRate: ticket.sample_rate},
      });
      sampleRate = ticket.sample_rate;
      callLink.querySelector("a").href = ticket.call_url;
      callLink.hidden = false;
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + ticket.ws_path);
      socket.binaryType = "arraybuffer";
      socket.onopen = function () {
        socket.send(JSON.stringify({event: "start", call_id: ticket.call_id, token: ticket.token}));
        capture.port.onmessage = function (message) {
          if (socket && socket.readyState === WebSocket.OPEN) socket.send(message.data);
        };
        source.connect(capture);
        stopButton.disabled = false;
        setStatus("Connected: speak to the agent.");
      };
      socket.onmessage = function (message) {
        if (typeof message.data === "string") onEvent(JSON.parse(message.data));
        else play(message.data);
      };
      socket.onclose = function (close) { socket = null; finished(close.code); };
    } catch (error) {
      stopMicrophone();
      startButton.disabled = false;
      setStatus("Could not start: " + error.message);
    }
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", function () {
    stopButton.disabled = true;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({event: "stop"}));
    setStatus("Hanging up…");
  });
})();
