// PyParrot live page: presenter (microphone -> /ws/converse or WebRTC /offer) and listener
// (SSE) views.
// Plain browser JavaScript, no framework and no build step: the page must work offline.
"use strict";

const $ = (id) => document.getElementById(id);
const names = (() => {
  try { return new Intl.DisplayNames([navigator.language || "en"], { type: "language" }); }
  catch { return null; }
})();
const languageName = (code) => {
  try { return (names && names.of(code)) || code; } catch { return code; }
};
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

// The API key: a header for fetch, the api_key query parameter for WebSocket and
// EventSource (browsers cannot set their headers). Kept for this tab only.
const apiKey = () => $("api-key").value.trim();
const withKey = (url) => {
  const key = apiKey();
  if (!key) return url;
  return `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}`;
};
const get = (url) => fetch(url, apiKey() ? { headers: { Authorization: `Bearer ${apiKey()}` } } : {});

// ---- captions: one paragraph per utterance; partials grey, finals black ------------------
class Captions {
  constructor(element) {
    this.element = element;
    this.lines = new Map();
    this.clear();
  }

  clear() {
    this.lines.clear();
    this.element.replaceChildren();
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "Captions appear here.";
    this.element.append(empty);
  }

  line(key) {
    let p = this.lines.get(key);
    if (!p) {
      this.element.querySelector(".empty")?.remove();
      p = document.createElement("p");
      p.dataset.utterance = String(key);
      // Utterances may finish out of order across languages: keep them sorted by index.
      const later = [...this.lines.entries()].find(([k]) => k > key);
      this.element.insertBefore(p, later ? later[1] : null);
      this.lines.set(key, p);
    }
    return p;
  }

  partial(key, text, stable) {
    const p = this.line(key);
    if (p.classList.contains("final")) return; // a late partial never overwrites a final
    p.className = "partial";
    const rest = stable && text.startsWith(stable) ? text.slice(stable.length) : text;
    const strong = document.createElement("span");
    strong.className = "stable";
    strong.textContent = stable && text.startsWith(stable) ? stable : "";
    p.replaceChildren(strong, document.createTextNode(rest));
    this.follow();
  }

  final(key, text, who) {
    const p = this.line(key);
    p.className = "final";
    p.textContent = text;
    if (who) {  // the speaker: an enrolled person's name, else the session's S1, S2, ...
      const label = document.createElement("span");
      label.className = "speaker";
      label.textContent = `${who}: `;
      p.prepend(label);
    }
    if (!text) { p.remove(); this.lines.delete(key); }
    this.follow();
  }

  person(event) {
    // Seed 004's person card: who just started speaking, and how they relate to the user.
    this.element.querySelector(".empty")?.remove();
    const card = document.createElement("aside");
    card.className = "person";
    const name = document.createElement("strong");
    name.textContent = event.name;
    const about = document.createElement("span");
    about.textContent = [event.relationship, event.description].filter(Boolean).join(" — ");
    card.append(name, document.createTextNode(" "), about);
    const line = this.lines.get(event.utterance);
    this.element.insertBefore(card, line || null);
    this.follow();
  }

  follow() {
    const el = this.element;
    // Scroll with the talk unless the reader scrolled up to re-read something.
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 200) el.scrollTop = el.scrollHeight;
  }
}

function setStatus(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// ---- options: languages and voices of the live workers -----------------------------------
const options = { source_languages: [], pairs: [], voices: [] };

async function loadOptions() {
  try {
    const response = await get("/v1/live/options");
    if (response.ok) Object.assign(options, await response.json());
    else if (response.status === 401 || response.status === 403) {
      setStatus("presenter-status", "This gateway needs an API key (top right).", true);
    }
  } catch (err) {
    setStatus("presenter-status", `Could not list languages: ${err}`, true);
  }
  fillSelect($("source-language"), options.source_languages, "Detect automatically");
  const voices = options.voices.map((v) => v.id);
  fillSelect($("voice"), voices, "No (captions only)", (v) => v);
  const targets = [...new Set(options.pairs.map((p) => p.split("-")[1]))].sort();
  fillSelect($("listen-language"), targets, "Original");
  renderTargets();
}

function fillSelect(select, values, first, label = languageName) {
  const keep = select.value;
  select.replaceChildren(new Option(first, ""));
  for (const value of values) select.append(new Option(`${label(value)} (${value})`, value));
  if (values.includes(keep)) select.value = keep;
}

function renderTargets() {
  const source = $("source-language").value;
  const box = $("targets");
  const checked = new Set(selectedTargets());
  box.querySelectorAll("label").forEach((l) => l.remove());
  const targets = [...new Set(
    options.pairs.map((p) => p.split("-")).filter(([s]) => !source || s === source)
      .map(([, t]) => t),
  )].sort();
  $("targets-empty").hidden = targets.length > 0;
  for (const code of targets) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "target";
    input.value = code;
    input.checked = checked.has(code);
    label.append(input, `${languageName(code)} (${code})`);
    box.append(label);
  }
}

function selectedTargets() {
  return [...document.querySelectorAll('input[name="target"]:checked')].map((i) => i.value);
}

// ---- presenter ---------------------------------------------------------------------------
const presenter = {
  link: null, context: null, stream: null, node: null, player: null,
  captions: null, translations: new Map(), ready: false,
};

function translationPane(code) {
  let pane = presenter.translations.get(code);
  if (!pane) {
    const article = document.createElement("article");
    article.className = "pane";
    article.setAttribute("lang", code);
    const h = document.createElement("h3");
    h.textContent = languageName(code);
    const div = document.createElement("div");
    div.className = "captions";
    div.id = `translation-${code}`;
    div.setAttribute("aria-live", "polite");
    div.tabIndex = 0;
    article.append(h, div);
    $("presenter-panes").append(article);
    pane = new Captions(div);
    presenter.translations.set(code, pane);
  }
  return pane;
}

async function openMicrophone() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  let node;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule("/static/capture.js");
    node = new AudioWorkletNode(context, "capture", { channelCount: 1, numberOfOutputs: 0 });
    node.port.onmessage = (e) => sendAudio(e.data);
  } else {
    // Older browsers: the deprecated ScriptProcessor still delivers the samples.
    node = context.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (e) => sendAudio(new Float32Array(e.inputBuffer.getChannelData(0)));
    node.connect(context.destination);
  }
  source.connect(node);
  Object.assign(presenter, { stream, context, node });
  return context.sampleRate;
}

function sendAudio(samples) {
  const link = presenter.link;
  if (!presenter.ready || !link || !link.open()) return;
  link.sendAudio?.(samples); // over WebRTC the microphone's track carries the audio
  let sum = 0;
  for (let i = 0; i < samples.length; i += 4) sum += samples[i] * samples[i];
  $("level").value = Math.min(1, Math.sqrt(sum / (samples.length / 4)) * 4);
}

function closeMicrophone() {
  presenter.stream?.getTracks().forEach((t) => t.stop());
  presenter.node?.disconnect();
  presenter.stream = presenter.node = null;
  $("level").value = 0;
}

async function startPresenting(event) {
  event.preventDefault();
  const resume = $("resume-id").value.trim();
  if (resume && !SESSION_ID.test(resume)) {
    setStatus("presenter-status", "A session id is 1-64 letters, digits, '-' or '_'.", true);
    return;
  }
  $("start").disabled = true;
  presenter.captions.clear();
  presenter.translations.forEach((_pane, code) => $(`translation-${code}`).closest(".pane").remove());
  presenter.translations.clear();
  let sampleRate;
  try {
    setStatus("presenter-status", "Opening the microphone…");
    sampleRate = await openMicrophone();
  } catch (err) {
    setStatus("presenter-status", `No microphone: ${err.message || err}`, true);
    $("start").disabled = false;
    return;
  }
  const targets = selectedTargets();
  targets.forEach(translationPane);
  const options = { pipeline: "cascaded", target_languages: targets };
  if ($("voice").value) options.voice = $("voice").value;
  if ($("source-language").value) options.language = $("source-language").value;
  if (resume) options.session_id = resume;
  if (!$("webrtc").checked) {
    connect({ type: "auth", api_key: apiKey(), audio_format: "float32",
              sample_rate: Math.round(sampleRate), ...options });
    return;
  }
  try {
    await connectRtc(options);
  } catch (err) {
    presenter.link?.close();
    linkClosed(`: ${err.message || err}`, true);
  }
}

// The presenter's link to the gateway, either transport: send(text), open(), close() and,
// over the socket only, sendAudio(samples).
function onMessage(data) {
  if (typeof data === "string") onPresenterEvent(JSON.parse(data));
  else playSpeech(data);
}

function linkClosed(reason, wasError) {
  presenter.ready = false;
  presenter.link = null;
  closeMicrophone();
  $("start").disabled = false;
  $("stop").disabled = true;
  if (wasError || reason) setStatus("presenter-status", `Disconnected${reason}`, wasError);
}

function connect(auth) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(withKey(`${scheme}://${location.host}/ws/converse`));
  ws.binaryType = "arraybuffer";
  presenter.link = {
    send: (text) => ws.send(text),
    open: () => ws.readyState === WebSocket.OPEN,
    close: () => ws.close(1000),
    sendAudio: (samples) => ws.send(samples.buffer),
  };
  ws.onopen = () => ws.send(JSON.stringify(auth));
  ws.onmessage = (e) => onMessage(e.data);
  ws.onclose = (e) => linkClosed(e.reason ? `: ${e.reason}` : "", e.code !== 1000 && e.code !== 1005);
  ws.onerror = () => setStatus("presenter-status", "The connection to the gateway failed.", true);
}

// WebRTC: the microphone's track goes to POST /offer (Opus, the browser's jitter handling);
// the session's events and speech come back on a data channel.
async function connectRtc(options) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  presenter.stream.getAudioTracks().forEach((track) => pc.addTrack(track, presenter.stream));
  const channel = pc.createDataChannel("events");
  channel.binaryType = "arraybuffer";
  channel.onmessage = (e) => onMessage(e.data);
  let closed = false;
  const close = (reason, wasError) => {
    if (closed) return;
    closed = true;
    pc.close();
    linkClosed(reason, wasError);
  };
  channel.onclose = () => close("", false);
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") close(": the WebRTC connection failed", true);
  };
  presenter.link = {
    send: (text) => channel.send(text),
    open: () => channel.readyState === "open",
    close: () => close("", false),
  };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc); // the gateway takes no trickled candidates: all go in the offer
  const headers = { "Content-Type": "application/json" };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const body = JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", ...options });
  const response = await fetch("/offer", { method: "POST", headers, body });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.detail || response.statusText);
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
}

function iceGathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000); // whatever was gathered by then
  });
}

function speakerOf(event) {
  return event.person?.name || event.speaker || "";
}

function onPresenterEvent(event) {
  switch (event.type) {
    case "session_started":
      presenter.ready = true;
      presenter.speechRate = event.tts_sample_rate;
      $("session-id").textContent = event.session_id;
      $("session-box").hidden = false;
      if ($("public").checked) shareWithListeners(event.session_id);
      $("stop").disabled = false;
      setStatus("presenter-status", "Listening. Speak now.");
      break;
    case "stt_partial":
      presenter.captions.partial(event.utterance, event.text, event.stable);
      break;
    case "stt_final":
      presenter.captions.final(event.utterance, event.text, speakerOf(event));
      break;
    case "person":
      presenter.captions.person(event);
      break;
    case "translation":
      translationPane(event.language).final(event.utterance, event.text);
      break;
    case "audio_processed":
      setStatus("presenter-status", "Stopped. The transcript is complete.");
      presenter.link?.close();
      break;
    case "error":
      setStatus("presenter-status", `Error (${event.code}): ${event.message}`, true);
      break;
    default:
      break;
  }
}

function stopPresenting() {
  $("stop").disabled = true;
  presenter.ready = false;
  closeMicrophone();
  const link = presenter.link;
  if (link && link.open()) {
    setStatus("presenter-status", "Finishing the last sentence…");
    link.send(JSON.stringify({ type: "audio_complete" }));
    // The gateway answers audio_processed; do not wait forever for it.
    setTimeout(() => link.open() && link.close(), 20000);
  }
}

// Spoken translation: 16-bit mono PCM frames, queued back to back on the audio clock.
function playSpeech(data) {
  const context = presenter.context;
  if (!context || data.byteLength < 2) return;
  const pcm = new Int16Array(data, 0, Math.floor(data.byteLength / 2));
  const buffer = context.createBuffer(1, pcm.length, presenter.speechRate || 24000);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  const at = Math.max(context.currentTime + 0.05, presenter.playAt || 0);
  source.start(at);
  presenter.playAt = at + buffer.duration;
}

// A session is private to its presenter (and admins) until listeners are granted; "*"
// lets every listener key follow it.
async function shareWithListeners(id) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(`/v1/sessions/${encodeURIComponent(id)}/listeners`, {
    method: "POST", headers, body: JSON.stringify({ identity: "*" }),
  });
  if (!response.ok) {
    setStatus("presenter-status", `Listeners cannot follow (HTTP ${response.status}).`, true);
  }
}

async function copyLink() {
  const url = `${location.origin}/#listen=${encodeURIComponent($("session-id").textContent)}`;
  try {
    await navigator.clipboard.writeText(url);
    setStatus("presenter-status", `Copied ${url}`);
  } catch {
    setStatus("presenter-status", `Listener link: ${url}`);
  }
}

// ---- listener ----------------------------------------------------------------------------
const listener = { source: null, captions: null };

async function join(event) {
  event.preventDefault();
  leave();
  const id = $("listen-id").value.trim();
  if (!SESSION_ID.test(id)) {
    setStatus("listener-status", "A session id is 1-64 letters, digits, '-' or '_'.", true);
    return;
  }
  // EventSource hides HTTP errors: ask first, so a wrong id gets a clear message.
  const check = await get(`/v1/sessions/${encodeURIComponent(id)}`);
  if (!check.ok) {
    const why = check.status === 403
      ? `This key may not follow session “${id}”: ask its presenter for access.`
      : `No session “${id}” (HTTP ${check.status}).`;
    setStatus("listener-status", why, true);
    return;
  }
  const language = $("listen-language").value;
  const query = language ? `?language=${encodeURIComponent(language)}` : "";
  const source = new EventSource(withKey(`/v1/sessions/${encodeURIComponent(id)}/events${query}`));
  listener.source = source;
  listener.captions.clear();
  const own = (e) => !language || e.language === language;
  const on = (type, handler) => source.addEventListener(type, (m) => handler(JSON.parse(m.data)));
  on("stt_partial", (e) => own(e) && listener.captions.partial(e.utterance, e.text, e.stable));
  on("stt_final", (e) => own(e) && listener.captions.final(e.utterance, e.text, speakerOf(e)));
  on("person", (e) => listener.captions.person(e));
  on("translation", (e) => language && listener.captions.final(e.utterance, e.text));
  on("ended", () => { setStatus("listener-status", "The session has ended."); leave(); });
  source.onopen = () => setStatus("listener-status", `Listening to session ${id}.`);
  source.onerror = (e) => {
    if (!e.data) {  // the connection dropped (the browser reconnects by itself)
      setStatus("listener-status", "Connection lost; reconnecting…", true);
      return;
    }
    const error = JSON.parse(e.data);  // the gateway's "error" event ends the stream
    setStatus("listener-status", `Stopped: ${error.message || error.code}.`, true);
    leave();
  };
  $("join").disabled = true;
  $("leave").disabled = false;
}

function leave() {
  listener.source?.close();
  listener.source = null;
  $("join").disabled = false;
  $("leave").disabled = true;
}

// ---- views -------------------------------------------------------------------------------
function show(view) {
  const listening = view === "listener";
  $("presenter").hidden = listening;
  $("listener").hidden = !listening;
  $("tab-presenter").setAttribute("aria-pressed", String(!listening));
  $("tab-listener").setAttribute("aria-pressed", String(listening));
}

function route() {
  const match = location.hash.match(/^#listen(?:=([A-Za-z0-9_-]{1,64}))?$/);
  show(match ? "listener" : "presenter");
  if (match && match[1]) $("listen-id").value = match[1];
}

document.addEventListener("DOMContentLoaded", () => {
  presenter.captions = new Captions($("captions"));
  listener.captions = new Captions($("listen-captions"));
  $("tab-presenter").onclick = () => { history.replaceState(null, "", "#present"); show("presenter"); };
  $("tab-listener").onclick = () => { history.replaceState(null, "", "#listen"); show("listener"); };
  $("source-language").onchange = renderTargets;
  $("api-key").value = sessionStorage.getItem("pyparrot-key") || "";
  $("api-key").onchange = () => {
    sessionStorage.setItem("pyparrot-key", apiKey());
    loadOptions();
  };
  $("presenter-form").onsubmit = startPresenting;
  $("stop").onclick = stopPresenting;
  $("copy-link").onclick = copyLink;
  $("listener-form").onsubmit = join;
  $("leave").onclick = () => { leave(); setStatus("listener-status", "Left the session."); };
  window.addEventListener("hashchange", route);
  route();
  loadOptions();
});
