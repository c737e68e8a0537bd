// The avatar page: plain JavaScript, no build step. Talks to the server's JSON API and WebRTC.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "avatar-forcing-token";  // sessionStorage: this tab only, gone when it closes
const HEARTBEAT_MS = 1000;  // a sign of life on the data channel (the server drops silent clients)

// Everything the page knows, also read by the browser test (window.avatarApp).
const app = {
  state: "idle",          // idle | connecting | connected | closed | error
  progress: "",           // what set-up is doing, until the first avatar frame is on screen
  live: false,            // the first avatar frame has been presented
  session: null,
  pc: null,
  channel: null,
  local: null,            // the user's MediaStream (mic + webcam), if any
  stats: null,            // the latest "stats" event from the server
  events: [],             // every event received (kept short)
  error: null,            // the latest error message shown
  needsToken: false,      // the server answered 401: the token form is shown
  portraitsLoaded: false,
  videoFrames: 0,         // avatar frames decoded and presented by the browser
  fps: 0,                 // measured with requestVideoFrameCallback
};
window.avatarApp = app;
let heartbeat = null;
let retryAfterToken = null;  // what failed with 401, run again once a token is given
let previewUrl = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
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

function setProgress(text) {
  app.progress = text;
  $("progress-text").textContent = text;
  $("progress").hidden = !text;
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
  if (response.status === 413) return `That is too large. ${body.message || ""}`;
  if (response.status === 401) return token() ? "That access token was not accepted." : "This server needs an access token.";
  return body.message || `The server answered ${response.status}.`;
}

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!response.ok) throw new ApiError(await explain(response), response.status);
  return response;
}

// A call that may need the token: on 401 the token form opens and the call runs again once it is given.
async function guarded(action) {
  try {
    await action();
  } catch (e) {
    if (e.status === 401) {
      askForToken(action);
    }
    throw e;
  }
}

function askForToken(action) {
  app.needsToken = true;
  retryAfterToken = action;
  $("token-form").hidden = false;
  $("token").focus();
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  app.needsToken = false;
  $("token-form").hidden = true;
  showError("");
  const action = retryAfterToken;
  retryAfterToken = null;
  if (!app.portraitsLoaded) await loadPortraits();  // whatever failed without the token is reloaded
  else if (action) action().catch((e) => { showError(e.message); if (e.status === 401) askForToken(action); });
});

// --- portraits -----------------------------------------------------------------------------
async function loadPortraits() {
  try {
    await guarded(async () => {
      const { builtin } = await (await api("/api/portraits")).json();
      const select = $("portrait");
      const uploads = [...select.options].filter((o) => o.value.startsWith("upload-"));
      select.innerHTML = "";
      for (const name of builtin) select.add(new Option(name, name));
      for (const option of uploads) select.add(option);
      app.portraitsLoaded = true;
      await showPreview();
    });
  } catch (e) {
    showError(e.message);
  }
}

async function showPreview(file = null) {
  const name = $("portrait").value;
  if (!name) return;
  try {
    const blob = file || await (await api(`/api/portraits/${encodeURIComponent(name)}/image`)).blob();
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    $("preview").src = previewUrl;
    $("preview").hidden = app.live;
  } catch (e) { /* a preview is a nicety: no error for it */ }
}

$("portrait").addEventListener("change", () => showPreview());

$("portrait-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  showError("");
  const upload = async () => {
    const { id } = await (await api("/api/portraits", {
      method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
    })).json();
    const option = new Option(`uploaded: ${file.name}`, id);
    $("portrait").add(option);
    $("portrait").value = id;
    await showPreview(file);
  };
  try { await guarded(upload); } catch (e) { showError(e.message); }
  event.target.value = "";
});

// --- the user's camera and microphone -------------------------------------------------------
async function openMedia() {
  const constraints = [
    // 15 fps is plenty: the server tracks at most every 2nd frame of 25, and decoding costs its CPU
    [{ audio: true, video: { width: 640, height: 480, frameRate: { ideal: 15, max: 25 } } }, null],
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
  app.live = false;
  $("preview").hidden = false;
  $("preview").classList.add("dim");
  try {
    if (!app.portraitsLoaded) {
      await loadPortraits();
      if (!app.portraitsLoaded) throw new Error(app.error || "The portrait list could not be loaded.");
    }
    setProgress("opening your camera and microphone…");
    app.local = await openMedia();
    $("self").srcObject = app.local;
    const pc = (app.pc = new RTCPeerConnection({ iceServers: [] }));
    const channel = (app.channel = pc.createDataChannel("events"));
    // a message already queued when Stop closed this channel must not write the ended session's figures back
    channel.onmessage = (message) => { if (app.channel === channel) onEvent(JSON.parse(message.data)); };
    app.channel.onopen = () => {
      heartbeat = setInterval(() => {
        if (app.channel && app.channel.readyState === "open") app.channel.send('{"type": "ping"}');
      }, HEARTBEAT_MS);
    };
    const tracks = app.local ? app.local.getTracks() : [];
    for (const kind of ["audio", "video"]) {
      const track = tracks.find((t) => t.kind === kind);
      if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [app.local] });
      else pc.addTransceiver(kind, { direction: "recvonly" });
    }
    const remote = new MediaStream();
    pc.ontrack = (event) => { remote.addTrack(event.track); $("avatar").srcObject = remote; };
    pc.onconnectionstatechange = () => {
      if (pc !== app.pc) return;
      if (pc.connectionState === "connected") {
        setState("connected");
        if (!app.live) setProgress("waiting for the first frame…");
      }
      if (pc.connectionState === "failed") { showError("The connection failed."); stop("error"); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc);
    setProgress("building the avatar…");
    let answer = null;
    await guarded(async () => {
      answer = await (await api("/api/offer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", portrait: $("portrait").value }),
      })).json();
    });
    app.session = answer.session;
    $("ws-url").textContent = `/api/sessions/${answer.session}/speech/ws`;
    setProgress("connecting…");
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  } catch (e) {
    if (e.status === 401) retryAfterToken = () => start();
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

function onFirstFrame() {
  if (app.live || app.state !== "connected") return;
  app.live = true;
  setProgress("");
  $("preview").hidden = true;
}

// Back to a clean page: no badges, figures, pictures or timers of the session that ended.
function resetView() {
  clearInterval(heartbeat);
  heartbeat = null;
  setProgress("");
  app.live = false;
  app.stats = null;
  for (const id of ["avatar-speaking", "user-speaking"]) $(id).classList.remove("on");
  for (const id of ["latency", "latency-p95", "fps", "dropped", "step", "av"]) $(id).textContent = "–";
  $("avatar").srcObject = null;
  $("self").srcObject = null;
  $("ws-url").textContent = "/api/sessions/<id>/speech/ws";
  $("preview").classList.remove("dim");
  $("preview").hidden = !$("preview").src;
}

async function stop(state = "closed") {
  if (app.session) {
    fetch(`/api/sessions/${app.session}`, { method: "DELETE", headers: headers() }).catch(() => {});
  }
  if (app.pc) app.pc.close();
  if (app.local) app.local.getTracks().forEach((t) => t.stop());
  app.pc = app.channel = app.local = app.session = null;
  resetView();
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
    $("av").textContent = ms(event.av_offset_ms_p95);
    $("step").textContent = `${event.step_name} (${event.step + 1} of ${event.steps})`;
    $("dropped").textContent = `${event.slips} late, ${event.video_skipped} skipped`;
  } else if (event.type === "speaking") {
    $("avatar-speaking").classList.toggle("on", event.avatar && app.state === "connected");
    $("user-speaking").classList.toggle("on", event.user && app.state === "connected");
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
    await guarded(() => api(`/api/sessions/${app.session}/say`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    }));
    $("say-text").value = "";
  } catch (e) {
    showError(e.message);
  }
});

$("speech-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file || !app.session) return;
  try {
    await guarded(() => api(`/api/sessions/${app.session}/speech`, { method: "POST", body: file }));
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
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
    video.addEventListener("playing", onFirstFrame);
    return;
  }
  let windowStart = performance.now(), windowFrames = 0;
  const onFrame = (now) => {
    app.videoFrames += 1;
    windowFrames += 1;
    onFirstFrame();
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
