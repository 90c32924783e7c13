// agedetect page: send one photo, with the age-check fields, to /api/v1/check and show
// what comes back: every face with its age, its PASS/REFER badge and its box, the age
// check for the photo, the age gap, and downloads of the answer made in the browser.
// Plain DOM, no framework and no build step. Text from the server is set with
// textContent only, never as HTML.
import { clearChecks, onFieldsChange, readFields, showChecks, showFieldErrors } from "./uses.js";

export const COLORS = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#a86ad8", "#2e86de"];
const BADGE = { pass: { text: "PASS", color: "#1a7f37" }, refer: { text: "REFER", color: "#b54708" } };
const MESSAGES = {
  no_face: "No face found in this photo. Try one where a face is clearly visible and roughly frontal.",
  unsupported_image: "This file is not an image agedetect can read. Use a JPEG, PNG, WebP, BMP, TIFF or GIF photo.",
  too_large: "This photo is too large.",
  invalid_request: "Please correct the highlighted field.",
};

// The photo on screen and the answer for it; ``run`` drops answers to an older request.
const state = { model: null, file: null, objectUrl: null, answer: null, run: 0, controller: null };
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

// ---------------------------------------------------------------- one photo, one request

/** Clear every earlier result: photo, faces, boxes, verdicts, downloads. */
function clearAnswer() {
  state.run++;
  if (state.controller) state.controller.abort();
  state.answer = null;
  clearChecks();
  $("result").hidden = true;
  $("faces").replaceChildren();
  $("overlay").replaceChildren();
  $("downloads").hidden = true;
  $("photo").removeAttribute("src");
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = null;
}

/** A new photo: clear what was shown, refuse what the server would refuse, then check it. */
function choose(file) {
  clearAnswer();
  state.file = null;
  if (state.model && file.size > state.model.max_upload_bytes) {
    showMessage(`${MESSAGES.too_large} The limit is ${Math.floor(state.model.max_upload_bytes / 1e6)} MB; ` +
      `this file is ${(file.size / 1e6).toFixed(1)} MB.`, "error");
    return;
  }
  if (file.type && !file.type.startsWith("image/")) {
    showMessage(MESSAGES.unsupported_image, "error");
    return;
  }
  state.file = file;
  state.objectUrl = URL.createObjectURL(file);
  $("photo").src = state.objectUrl;  // shown at once, whatever the answer: the user sees what was sent
  $("result").hidden = false;
  check();
}

/** Send the current photo with the current fields (again after a field changes). */
async function check() {
  const file = state.file;
  if (!file) {
    readFields();  // still show the fields' own errors
    return;
  }
  const run = ++state.run;
  if (state.controller) state.controller.abort();
  clearChecks();
  const fields = readFields();
  if (!fields) {
    // The faces do not depend on the fields, but their badges do: drop the stale ones.
    showFaces(null);
    showMessage(MESSAGES.invalid_request, "error");
    return;
  }
  const form = new FormData();
  // A neutral name: the photo's own file name never leaves the browser.
  form.append("image", file, "photo");
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  state.controller = new AbortController();
  document.body.classList.add("busy");
  showMessage("Looking for faces…");
  let answer;
  let body = null;
  try {
    answer = await fetch("/api/v1/check", { method: "POST", body: form, signal: state.controller.signal });
    body = await answer.json().catch(() => null);
  } catch (error) {
    if (run === state.run) {
      document.body.classList.remove("busy");
      showMessage("Could not reach the server. Is it still running?", "error");
    }
    return;
  }
  if (run !== state.run) return;  // a newer photo or field change took over
  document.body.classList.remove("busy");
  if (answer.ok && body) {
    state.answer = body;
    showAnswer(body);
    bringIntoView();
    return;
  }
  const error = body && body.error ? body.error : { code: "", message: `The server answered ${answer.status}.` };
  if (error.code === "invalid_request" && error.fields) {
    showFieldErrors(error.fields);
    showFaces(null);
    showMessage(MESSAGES.invalid_request, "error");
    return;
  }
  clearAnswer();  // the server could not use the photo: nothing of it stays on screen
  state.file = null;
  showMessage(error.code === "too_large" ? `${MESSAGES.too_large} ${error.message}` : (MESSAGES[error.code] || error.message), "error");
}

function showAnswer(body) {
  const n = body.faces.length;
  showFaces(body);
  showChecks(body);
  $("downloads").hidden = false;
  if (n === 0) showMessage(MESSAGES.no_face, "error");
  else showMessage(`${n} face${n === 1 ? "" : "s"} found.`, "ok");
}

/** On a narrow screen the answer starts below the form: scroll it into view. */
function bringIntoView() {
  const answer = $("answer");
  const top = answer.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.5) {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    answer.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
  }
}

// ---------------------------------------------------------------- faces, boxes and badges

/** Each face's screening decision, by face number. */
function decisions(body) {
  return new Map(body.screening.faces.map((d) => [d.face, d]));
}

/** Draw the answer's faces (or, with ``null``, remove their boxes and badges). */
function showFaces(body) {
  $("overlay").replaceChildren();
  $("faces").replaceChildren();
  if (!body) return;
  const decided = decisions(body);
  drawBoxes($("overlay"), body, decided);
  listFaces(body.faces, decided);
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

/** The label over a face's box: its number, its age in whole years, its badge. */
function boxLabel(face, decision) {
  return { text: `${face.face}: ${face.age_years}`, badge: decision ? BADGE[decision.decision] : null };
}

function drawBoxes(overlay, body, decided) {
  overlay.setAttribute("viewBox", `0 0 ${body.width} ${body.height}`);
  const unit = Math.max(body.width, body.height) / 100;
  for (const face of body.faces) {
    const [x1, y1, x2, y2] = face.box;
    const color = COLORS[(face.face - 1) % COLORS.length];
    overlay.append(svgElement("rect", {
      x: x1, y: y1, width: x2 - x1, height: y2 - y1, "data-face": face.face,
      fill: "none", stroke: color, "stroke-width": Math.max(2, unit * 0.5),
    }));
    const size = Math.max(12, Math.min(unit * 4, (x2 - x1) * 0.35));
    const { text, badge } = boxLabel(face, decided.get(face.face));
    const label = svgElement("text", {
      x: x1, y: Math.max(size, y1 - size * 0.25), "font-size": size, class: "box-label",
      fill: "#fff", stroke: color, "stroke-width": size * 0.25, "paint-order": "stroke",
    });
    label.textContent = text;
    if (badge) {
      const mark = svgElement("tspan", { stroke: badge.color, dx: size * 0.3, class: "box-badge" });
      mark.textContent = badge.text;
      label.append(mark);
    }
    overlay.append(label);
    // Keep the label inside the photo (a face at its right edge); its box counts the badge's gap.
    const width = label.getBBox().width;
    if (x1 + width > body.width) label.setAttribute("x", Math.max(0, body.width - width));
  }
}

function listFaces(faces, decided) {
  const list = $("faces");
  for (const face of faces) {
    const item = document.createElement("li");
    item.className = "face";
    item.dataset.testid = "face";
    item.style.setProperty("--face-color", COLORS[(face.face - 1) % COLORS.length]);

    const title = document.createElement("h2");
    title.append(`Face ${face.face}: `);
    const age = document.createElement("span");
    age.className = "age";
    age.dataset.testid = "age";
    age.textContent = `${face.age_years}`;
    title.append(age, " years");
    const decision = decided.get(face.face);
    const parts = [title];
    if (decision) {
      const badge = document.createElement("p");
      badge.className = `badge ${decision.decision}`;
      badge.dataset.testid = "badge";
      const word = document.createElement("strong");
      word.textContent = BADGE[decision.decision].text;
      badge.append(word, ` ${decision.reason}`);
      parts.push(badge);
    }
    const [low, high] = face.age_interval;
    const range = document.createElement("p");
    range.className = "range";
    range.textContent = `80% sure: between ${Math.round(low)} and ${Math.round(high)} · group ${face.age_group}`;
    item.append(...parts, range, groupBars(face));
    list.append(item);
  }
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

// ---------------------------------------------------------------- downloads, made here

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function downloadJson() {
  if (!state.answer) return;
  save(new Blob([JSON.stringify(state.answer, null, 2)], { type: "application/json" }), "agedetect.json");
}

/** The photo at full size with each face's box, number, age and badge, as a PNG. */
function downloadPhoto() {
  const body = state.answer;
  const photo = $("photo");
  if (!body || !photo.complete || !photo.naturalWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = body.width;
  canvas.height = body.height;
  const context = canvas.getContext("2d");
  context.drawImage(photo, 0, 0, body.width, body.height);
  const unit = Math.max(body.width, body.height) / 100;
  const decided = decisions(body);
  for (const face of body.faces) {
    const [x1, y1, x2, y2] = face.box;
    const color = COLORS[(face.face - 1) % COLORS.length];
    context.lineWidth = Math.max(2, unit * 0.5);
    context.strokeStyle = color;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const size = Math.max(12, Math.min(unit * 4, (x2 - x1) * 0.35));
    const { text, badge } = boxLabel(face, decided.get(face.face));
    context.font = `700 ${size}px system-ui, sans-serif`;
    context.lineJoin = "round";
    context.lineWidth = size * 0.25;
    const y = Math.max(size, y1 - size * 0.25);
    const parts = [[text, color], badge ? [` ${badge.text}`, badge.color] : null].filter(Boolean);
    const width = parts.reduce((sum, [part]) => sum + context.measureText(part).width + size * 0.3, 0);
    let x = Math.max(0, Math.min(x1, body.width - width));
    for (const [part, stroke] of parts) {
      context.strokeStyle = stroke;
      context.strokeText(part, x, y);
      context.fillStyle = "#fff";
      context.fillText(part, x, y);
      x += context.measureText(part).width + size * 0.3;
    }
  }
  canvas.toBlob((blob) => { if (blob) save(blob, "agedetect.png"); }, "image/png");
}

// ---------------------------------------------------------------- picking a photo

function firstFile(list) {
  return list && list.length ? list[0] : null;
}

function setUpPicking() {
  for (const id of ["file", "capture"]) {
    const input = $(id);
    input.addEventListener("change", () => {
      const file = firstFile(input.files);
      if (file) choose(file);
      input.value = "";  // choosing the same file again still triggers
    });
  }
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
    if (file) choose(file);
  });
  // A pasted screenshot or copied image works too.
  window.addEventListener("paste", (event) => {
    const file = firstFile(event.clipboardData && event.clipboardData.files);
    if (file) choose(file);
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
    if (blob) choose(new File([blob], "camera.jpg", { type: "image/jpeg" }));
  }, "image/jpeg", 0.92);
}

// Modules run after the document is parsed.
setUpPicking();
setUpCamera();
onFieldsChange(check);
readFields();
$("download-json").addEventListener("click", downloadJson);
$("download-photo").addEventListener("click", downloadPhoto);
loadModelInfo();
