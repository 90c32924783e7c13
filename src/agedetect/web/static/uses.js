// The page's age check and age gap: their form fields and how their answers read.
// app.js sends the fields with each photo (one request, /api/v1/check) and calls
// showChecks() with the answer. A field that is empty or out of range is shown as an
// error on the field and nothing is sent, so the legend, the request and the verdict
// always use the same numbers. Text from the server is set with textContent only.

const $ = (id) => document.getElementById(id);

// Each field: its input, what people call it, and whether it may be left empty.
const FIELDS = {
  min_age: { id: "min-age", name: "The legal age", optional: false },
  buffer: { id: "buffer", name: "The buffer", optional: false },
  age: { id: "your-age", name: "Your age", optional: true },
  face: { id: "gap-face", name: "The face number", optional: false },
};

function problemWith(input, field) {
  const v = input.validity;
  const range = input.max ? `a whole number from ${input.min} to ${input.max}` : `a whole number from ${input.min} up`;
  if (v.badInput) return `${field.name} must be ${range}.`;
  if (input.value.trim() === "") return field.optional ? "" : `${field.name} is empty: enter ${range}.`;
  if (v.rangeUnderflow || v.rangeOverflow || v.stepMismatch) return `${field.name} must be ${range}.`;
  return "";
}

/** Show each field's problem under it (a map of field name to message; others cleared). */
export function showFieldErrors(problems) {
  for (const [key, field] of Object.entries(FIELDS)) {
    const text = problems[key] || "";
    const input = $(field.id);
    $(`${field.id}-error`).textContent = text;
    input.setAttribute("aria-invalid", text ? "true" : "false");
  }
}

/** The fields to send, or null (their problems shown on the fields) when one is invalid. */
export function readFields() {
  const problems = {};
  for (const [key, field] of Object.entries(FIELDS)) {
    const problem = problemWith($(field.id), field);
    if (problem) problems[key] = problem;
  }
  const minAge = $("min-age").valueAsNumber;
  const buffer = $("buffer").valueAsNumber;
  if (!problems.min_age && !problems.buffer && minAge + buffer > 100) {
    problems.buffer = "The legal age plus the buffer must be at most 100, the model's oldest age.";
  }
  showFieldErrors(problems);
  $("threshold").textContent = problems.min_age || problems.buffer ? "?" : String(minAge + buffer);
  if (Object.keys(problems).length) return null;
  const fields = { min_age: String(minAge), buffer: String(buffer), context: $("gap-context").value };
  if ($("your-age").value.trim() !== "") {
    fields.age = String($("your-age").valueAsNumber);
    fields.face = String($("gap-face").valueAsNumber);
  }
  return fields;
}

/** Call ``callback`` when any field changes (it re-reads them with readFields). */
export function onFieldsChange(callback) {
  for (const id of ["min-age", "buffer", "your-age", "gap-face", "gap-context"]) {
    $(id).addEventListener("change", callback);
  }
  $("checks").addEventListener("submit", (event) => { event.preventDefault(); callback(); });
}

function say(element, kind, text, note) {
  element.className = `verdict ${kind}`;
  element.replaceChildren(text);
  if (note) {
    const small = document.createElement("span");
    small.className = "note";
    small.textContent = note;
    element.append(small);
  }
  element.hidden = false;
}

/** Show the photo's age check and the age gap from a /api/v1/check answer. */
export function showChecks(answer) {
  const s = answer.screening;
  $("threshold").textContent = String(s.policy.threshold);
  const cap = s.policy.max_minor_risk;
  $("risk-cap").textContent = cap === null ? "any" : `${+(cap * 100).toFixed(1)}%`;
  say($("screening"), s.decision, `${s.decision === "pass" ? "PASS" : "REFER"}: ${s.message}`);
  const gap = answer.gap;
  if (!gap) {
    $("gap").hidden = true;
    return;
  }
  const which = gap.faces > 1 ? `Face ${gap.face} of ${gap.faces}: estimated` : "Estimated";
  say($("gap"), gap.unusual ? "unusual" : "",
    `${which} ${gap.estimated_years}, stated ${gap.stated_age}. ${gap.message}`, gap.note);
}

/** Remove the age check and age gap of an earlier photo. */
export function clearChecks() {
  for (const id of ["screening", "gap"]) {
    $(id).hidden = true;
    $(id).replaceChildren();
  }
}
