// agedetect Live mode: the camera's frames over one WebSocket to /api/v1/live, boxes and
// a per-person age check drawn on the feed as the answers come back. Frames are
// downscaled here, sent one at a time (the next when the answer arrives) and kept by
// nobody: the server forgets each frame with its answer. Text from the server is set
// with textContent only, never as HTML.
"use strict";

(() => {
  const WIDTH = 640;  // frames sent are at most this wide
  const QUALITY = 0.8;  // JPEG quality of the frames sent
  const COLORS = { pass: "#1a7f37", refer: "#d97706", pending: "#2e6be6" };
  const $ = (id) => document.getElementById(id);
  // Round trips (ms, frame sent -> boxes drawn) of this session, for the tests and bench.
  const live = { socket: null, stream: null, running: false, timer: null, rtts: [], minFrames: 10, maxFps: 8 };
  window.agedetectLive = live;

  function status(text, kind = "info") {
    const box = $("live-status");
    box.textContent = text;
    box.className = `message ${kind}`;
  }

  async function start() {
    if (live.running) return;
    try {
      live.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
    } catch (_) {
      status("The camera is not available (no camera, or permission was refused).", "error");
      return;
    }
    const video = $("live-video");
    video.srcObject = live.stream;
    $("live").hidden = false;
    $("live-open").hidden = true;
    live.running = true;
    live.rtts = [];
    const minAge = Number($("min-age").value) || 18;
    const buffer = Number($("buffer").value);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = `min_age=${encodeURIComponent(minAge)}&buffer=${encodeURIComponent(Number.isFinite(buffer) ? buffer : 7)}`;
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/live?${query}`);
    socket.binaryType = "arraybuffer";
    live.socket = socket;
    status("Connecting…");
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (live.running) status(event.reason ? `Live stopped (${event.reason}).` : "Live stopped.", "error");
      stop(false);
    });
    socket.addEventListener("error", () => status("Could not reach the server. Is it still running?", "error"));
  }

  function stop(byUser = true) {
    live.running = false;
    clearTimeout(live.timer);
    if (live.socket && live.socket.readyState <= 1) live.socket.close(1000, "stopped");
    live.socket = null;
    if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
    live.stream = null;
    $("live-video").srcObject = null;
    $("live").hidden = true;
    $("live-open").hidden = false;
    if (byUser) status("");
  }

  let sentAt = 0;

  function sendFrame() {
    if (!live.running || !live.socket || live.socket.readyState !== 1) return;
    const video = $("live-video");
    if (!video.videoWidth) {
      live.timer = setTimeout(sendFrame, 100);
      return;
    }
    const scale = Math.min(1, WIDTH / video.videoWidth);
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(async (blob) => {
      if (!blob || !live.running || !live.socket || live.socket.readyState !== 1) return;
      sentAt = performance.now();
      live.socket.send(await blob.arrayBuffer());
    }, "image/jpeg", QUALITY);
  }

  function next() {
    // At most maxFps frames a second, and never more than one waiting for its answer.
    const wait = Math.max(0, 1000 / live.maxFps - (performance.now() - sentAt));
    live.timer = setTimeout(sendFrame, wait);
  }

  function onMessage(body) {
    if (body.type === "ready") {
      live.minFrames = body.min_frames;
      live.maxFps = Math.min(8, body.max_fps);
      status(`Live: look at the camera. Each person needs ${body.min_frames} frames before the check ` +
        `(Challenge ${body.policy.threshold}).`, "ok");
      sendFrame();
      return;
    }
    if (body.error) {
      status(body.error.message, "error");
      if (live.running) next();
      return;
    }
    if (body.type === "faces") {
      draw(body);
      live.rtts.push(performance.now() - sentAt);
      next();
    }
  }

  function draw(body) {
    const canvas = $("live-overlay");
    canvas.width = body.width;
    canvas.height = body.height;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const unit = Math.max(body.width, body.height) / 100;
    const list = $("live-people");
    list.replaceChildren();
    for (const face of body.faces) {
      const kind = face.decision || "pending";
      const [x1, y1, x2, y2] = face.box;
      context.lineWidth = Math.max(2, unit * 0.5);
      context.strokeStyle = COLORS[kind];
      context.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const size = Math.max(12, Math.min(unit * 4, (x2 - x1) * 0.3));
      context.font = `700 ${size}px system-ui, sans-serif`;
      const label = face.decision ? `${face.person}: ${face.decision.toUpperCase()} (${face.age_years})`
        : `${face.person}: ${face.frames}/${live.minFrames}`;
      context.lineWidth = size * 0.25;
      context.strokeText(label, x1, Math.max(size, y1 - size * 0.25));
      context.fillStyle = "#fff";
      context.fillText(label, x1, Math.max(size, y1 - size * 0.25));

      const item = document.createElement("li");
      item.className = `verdict ${face.decision || ""}`;
      item.dataset.testid = "live-person";
      item.dataset.decision = kind;
      const title = document.createElement("strong");
      title.textContent = face.decision ? `Person ${face.person}: ${face.decision.toUpperCase()}`
        : `Person ${face.person}: checking…`;
      const progress = document.createElement("progress");
      progress.max = live.minFrames;
      progress.value = Math.min(face.frames, live.minFrames);
      const note = document.createElement("span");
      note.className = "note";
      const [low, high] = face.age_interval;
      note.textContent = `${face.message} · looks ${face.age_years} (80%: ${Math.round(low)}–${Math.round(high)})`;
      item.append(title, " ", progress, note);
      list.append(item);
    }
    if (!body.faces.length) {
      const item = document.createElement("li");
      item.className = "verdict";
      item.textContent = "No face in view.";
      list.append(item);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const canStream = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) && window.isSecureContext;
    if (!canStream || !window.WebSocket) {
      $("live-open").hidden = true;
      return;
    }
    $("live-open").addEventListener("click", start);
    $("live-stop").addEventListener("click", () => stop(true));
  });
})();
