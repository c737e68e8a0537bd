// The avatar page: plain JavaScript, no build step. Talks to the server's JSON API and WebRTC.
"use strict";

const $ = (id) => document.getElementById(id);

// Everything the page knows, also read by the browser test (window.avatarApp).
const app = {
  state: "idle",          // idle | connecting | connected | closed | error
  session: null,
  pc: null,
  channel: null,
  local: null,            // the user's MediaStream (mic + webcam), if any
  stats: null,            // the latest "stats" event from the server
  events: [],             // every event received (kept short)
  error: null,            // the latest error message shown
  videoFrames: 0,         // avatar frames decoded and presented by the browser
  fps: 0,                 // measured with requestVideoFrameCallback
};
window.avatarApp = app;

function headers(extra = {}) {
  const token = $("token").value.trim();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function showError(message) {
  app.error = message;
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setState(state) {
  app.state = state;
  $("state").textContent = state;
  const live = state === "connecting" || state === "connected";
  $("start").disabled = live;
  $("stop").disabled = !live;
  for (const id of ["say", "speech-file", "hush"]) $(id).disabled = state !== "connected";
}

// Turn a non-2xx answer into a message a person understands.
async function explain(response) {
  let body = {};
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (response.status === 503) {
    const wait = response.headers.get("Retry-After");
    return `The server is busy: all session slots are in use. Try again in ${wait || "a few"} seconds.`;
  }
  if (response.status === 422 || body.error === "no_face") {
    return "No face was found in that photo. Please choose a clear, front-facing portrait.";
  }
  if (response.status === 413) return `That file is too large. ${body.message || ""}`;
  if (response.status === 401) return "This server needs an access token (see “Access token”).";
  return body.message || `The server answered ${response.status}.`;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!response.ok) throw new Error(await explain(response));
  return response.json();
}

// --- portraits -----------------------------------------------------------------------------
async function loadPortraits() {
  try {
    const { builtin } = await api("/api/portraits");
    for (const name of builtin) $("portrait").add(new Option(name, name));
  } catch (e) {
    showError(e.message);
  }
}

$("portrait-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  showError("");
  try {
    const { id } = await api("/api/portraits", { method: "POST", body: file,
                                                  headers: { "Content-Type": file.type || "application/octet-stream" } });
    const option = new Option(`uploaded: ${file.name}`, id);
    $("portrait").add(option);
    $("portrait").value = id;
  } catch (e) {
    showError(e.message);
  }
  event.target.value = "";
});

// --- the user's camera and microphone -------------------------------------------------------
async function openMedia() {
  const constraints = [
    [{ audio: true, video: { width: 640, height: 480 } }, null],
    [{ audio: true }, "No camera found (or access denied): the avatar will hear you but not see you."],
    [{ video: true }, "No microphone found (or access denied): the avatar will see you but not hear you."],
  ];
  for (const [constraint, warning] of constraints) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraint);
      if (warning) showError(warning);
      return stream;
    } catch (e) { /* try the next, smaller request */ }
  }
  showError("No camera or microphone is available: the avatar can still speak, but cannot react to you.");
  return null;
}

// --- session --------------------------------------------------------------------------------
async function start() {
  showError("");
  setState("connecting");
  try {
    app.local = await openMedia();
    $("self").srcObject = app.local;
    const pc = (app.pc = new RTCPeerConnection({ iceServers: [] }));
    app.channel = pc.createDataChannel("events");
    app.channel.onmessage = (message) => onEvent(JSON.parse(message.data));
    const tracks = app.local ? app.local.getTracks() : [];
    for (const kind of ["audio", "video"]) {
      const track = tracks.find((t) => t.kind === kind);
      if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [app.local] });
      else pc.addTransceiver(kind, { direction: "recvonly" });
    }
    const remote = new MediaStream();
    pc.ontrack = (event) => { remote.addTrack(event.track); $("avatar").srcObject = remote; };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") setState("connected");
      if (pc.connectionState === "failed") { showError("The connection failed."); stop(); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc);
    const answer = await api("/api/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", portrait: $("portrait").value }),
    });
    app.session = answer.session;
    $("ws-url").textContent = `/api/sessions/${answer.session}/speech/ws`;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  } catch (e) {
    showError(e.message);
    await stop("error");
  }
}

function iceGatheringDone(pc) {
  // no trickle ICE: send the offer with every candidate in it (on loopback this takes milliseconds)
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 2000);
  });
}

async function stop(state = "closed") {
  if (app.session) {
    fetch(`/api/sessions/${app.session}`, { method: "DELETE", headers: headers() }).catch(() => {});
  }
  if (app.pc) app.pc.close();
  if (app.local) app.local.getTracks().forEach((t) => t.stop());
  app.pc = app.channel = app.local = app.session = null;
  setState(state);
}

function onEvent(event) {
  app.events.push(event);
  if (app.events.length > 200) app.events.shift();
  if (event.type === "stats") {
    app.stats = event;
    const ms = (v) => (v == null ? "–" : `${Math.round(v)} ms`);
    $("latency").textContent = ms(event.e2e_ms_p50);
    $("latency-p95").textContent = ms(event.e2e_ms_p95);
    $("dropped").textContent = `${event.video_repeated} shown twice, ${event.frames_skipped} skipped`;
  } else if (event.type === "speaking") {
    $("avatar-speaking").classList.toggle("on", event.avatar);
    $("user-speaking").classList.toggle("on", event.user);
  } else if (event.type === "error") {
    showError(event.message);
  } else if (event.type === "closed" && app.state !== "closed") {
    showError(`The session ended: ${event.reason}.`);
    stop();
  }
}

// --- the avatar's speech ----------------------------------------------------------------------
$("say-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("say-text").value.trim();
  if (!text || !app.session) return;
  try {
    await api(`/api/sessions/${app.session}/say`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    });
    $("say-text").value = "";
  } catch (e) {
    showError(e.message);
  }
});

$("speech-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file || !app.session) return;
  try {
    await api(`/api/sessions/${app.session}/speech`, { method: "POST", body: file });
  } catch (e) {
    showError(e.message);
  }
  event.target.value = "";
});

$("hush").addEventListener("click", () => {
  if (app.channel && app.channel.readyState === "open") app.channel.send(JSON.stringify({ type: "stop_speech" }));
});

// --- received frame rate, measured by the browser itself -----------------------------------------
function countFrames() {
  const video = $("avatar");
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  let windowStart = performance.now(), windowFrames = 0;
  const onFrame = (now) => {
    app.videoFrames += 1;
    windowFrames += 1;
    if (now - windowStart >= 1000) {
      app.fps = (windowFrames * 1000) / (now - windowStart);
      $("fps").textContent = app.fps.toFixed(1);
      windowStart = now;
      windowFrames = 0;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

$("start").addEventListener("click", () => start());
$("stop").addEventListener("click", () => stop());
window.addEventListener("beforeunload", () => stop());
setState("idle");
loadPortraits();
countFrames();
