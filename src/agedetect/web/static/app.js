// agedetect page: send one photo to /api/v1/predict and draw what comes back.
// Plain DOM, no framework and no build step. Text from the server is set with
// textContent only, never as HTML.
"use strict";

const COLORS = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#a86ad8", "#2e86de"];
const MESSAGES = {
  no_face: "No face found in this photo. Try one where a face is clearly visible and roughly frontal.",
  unsupported_image: "This file is not an image agedetect can read. Use a JPEG, PNG, WebP, BMP, TIFF or GIF photo.",
  too_large: "This photo is too large.",
  invalid_request: "The photo did not arrive. Please try again.",
};

const state = { model: null, objectUrl: null, busy: false };
const $ = (id) => document.getElementById(id);

function showMessage(text, kind = "info") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
}

async function loadModelInfo() {
  try {
    const answer = await fetch("/api/v1/model");
    if (!answer.ok) return;
    state.model = await answer.json();
    $("limit").textContent = `; up to ${Math.floor(state.model.max_upload_bytes / 1e6)} MB`;
    $("model-info").textContent = `Model: ${state.model.name}.`;
  } catch (_) {
    // The page still works without the limits; the server enforces them anyway.
  }
}

async function send(file) {
  if (state.busy) return;
  if (state.model && file.size > state.model.max_upload_bytes) {
    showMessage(`${MESSAGES.too_large} The limit is ${Math.floor(state.model.max_upload_bytes / 1e6)} MB; ` +
      `this file is ${(file.size / 1e6).toFixed(1)} MB.`, "error");
    return;
  }
  if (file.type && !file.type.startsWith("image/")) {
    showMessage(MESSAGES.unsupported_image, "error");
    return;
  }
  state.busy = true;
  document.body.classList.add("busy");
  showMessage("Looking for faces…");
  const form = new FormData();
  // A neutral name: the photo's own file name never leaves the browser.
  form.append("image", file, "photo");
  try {
    const answer = await fetch("/api/v1/predict", { method: "POST", body: form });
    const body = await answer.json().catch(() => null);
    if (answer.ok && body) {
      show(file, body);
      const n = body.faces.length;
      showMessage(`${n} face${n === 1 ? "" : "s"} found.`, "ok");
    } else {
      const code = body && body.error ? body.error.code : "";
      const detail = body && body.error ? body.error.message : `The server answered ${answer.status}.`;
      hideResult();
      showMessage(code === "too_large" ? `${MESSAGES.too_large} ${detail}` : (MESSAGES[code] || detail), "error");
    }
    // uses.js runs the age check and age gap on every photo the server could read.
    document.dispatchEvent(new CustomEvent("agedetect:photo", { detail: { file, readable: answer.ok || (body && body.error && body.error.code === "no_face") } }));
  } catch (_) {
    showMessage("Could not reach the server. Is it still running?", "error");
  } finally {
    state.busy = false;
    document.body.classList.remove("busy");
  }
}

function hideResult() {
  $("result").hidden = true;
}

function show(file, body) {
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = URL.createObjectURL(file);
  $("photo").src = state.objectUrl;
  drawBoxes(body);
  listFaces(body.faces);
  $("result").hidden = false;
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function drawBoxes(body) {
  const overlay = $("overlay");
  overlay.replaceChildren();
  overlay.setAttribute("viewBox", `0 0 ${body.width} ${body.height}`);
  const unit = Math.max(body.width, body.height) / 100;
  body.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const color = COLORS[i % COLORS.length];
    overlay.append(svgElement("rect", {
      x: x1, y: y1, width: x2 - x1, height: y2 - y1,
      fill: "none", stroke: color, "stroke-width": Math.max(2, unit * 0.5),
    }));
    const size = Math.max(12, Math.min(unit * 4, (x2 - x1) * 0.35));
    const text = `${i + 1}: ${Math.round(face.age)}`;
    const label = svgElement("text", {
      x: x1, y: Math.max(size, y1 - size * 0.25), "font-size": size, class: "box-label",
      fill: "#fff", stroke: color, "stroke-width": size * 0.25, "paint-order": "stroke",
    });
    label.textContent = text;
    overlay.append(label);
  });
}

function listFaces(faces) {
  const list = $("faces");
  list.replaceChildren();
  faces.forEach((face, i) => {
    const item = document.createElement("li");
    item.className = "face";
    item.dataset.testid = "face";
    item.style.setProperty("--face-color", COLORS[i % COLORS.length]);

    const title = document.createElement("h2");
    const [low, high] = face.age_interval;
    title.append(`Face ${i + 1}: `);
    const age = document.createElement("span");
    age.className = "age";
    age.dataset.testid = "age";
    age.textContent = `${Math.round(face.age)}`;
    title.append(age, " years");
    const range = document.createElement("p");
    range.className = "range";
    range.textContent = `80% sure: between ${Math.round(low)} and ${Math.round(high)} · group ${face.age_group}`;
    item.append(title, range, groupBars(face));
    list.append(item);
  });
}

function groupBars(face) {
  const table = document.createElement("table");
  table.className = "groups";
  const caption = document.createElement("caption");
  caption.textContent = "Age group odds";
  table.append(caption);
  for (const [group, p] of Object.entries(face.group_probabilities)) {
    const row = document.createElement("tr");
    if (group === face.age_group) row.className = "chosen";
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = group;
    const barCell = document.createElement("td");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    barCell.append(bar);
    const value = document.createElement("td");
    value.className = "pct";
    value.textContent = `${Math.round(100 * p)}%`;
    row.append(name, barCell, value);
    table.append(row);
  }
  return table;
}

// ---------------------------------------------------------------- picking a photo

function firstFile(list) {
  return list && list.length ? list[0] : null;
}

function setUpPicking() {
  const input = $("file");
  input.addEventListener("change", () => {
    const file = firstFile(input.files);
    if (file) send(file);
    input.value = "";  // choosing the same file again still triggers
  });
  const capture = $("capture");
  capture.addEventListener("change", () => {
    const file = firstFile(capture.files);
    if (file) send(file);
    capture.value = "";
  });

  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = firstFile(event.dataTransfer && event.dataTransfer.files);
    if (file) send(file);
  });
  // A pasted screenshot or copied image works too.
  window.addEventListener("paste", (event) => {
    const file = firstFile(event.clipboardData && event.clipboardData.files);
    if (file) send(file);
  });
}

// ---------------------------------------------------------------- the camera

let stream = null;

function setUpCamera() {
  const canStream = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) && window.isSecureContext;
  if (!canStream) {
    // Phones without getUserMedia (or pages not on https/localhost) still offer the
    // camera through the file picker's capture attribute.
    $("camera-open").hidden = true;
    $("capture-label").hidden = false;
    return;
  }
  $("camera-open").addEventListener("click", openCamera);
  $("camera-close").addEventListener("click", closeCamera);
  $("camera-shoot").addEventListener("click", shoot);
}

async function openCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (error) {
    showMessage("The camera is not available (no camera, or permission was refused).", "error");
    return;
  }
  $("video").srcObject = stream;
  $("camera").hidden = false;
}

function closeCamera() {
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  $("video").srcObject = null;
  $("camera").hidden = true;
}

function shoot() {
  const video = $("video");
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  closeCamera();
  canvas.toBlob((blob) => {
    if (blob) send(new File([blob], "camera.jpg", { type: "image/jpeg" }));
  }, "image/jpeg", 0.92);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpPicking();
  setUpCamera();
  loadModelInfo();
});
