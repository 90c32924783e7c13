// The page's age check (POST /api/v1/screen) and optional "your age" gap (POST /api/v1/gap).
// app.js announces each photo the server could read; this runs both checks on it, and again
// when a field changes. Text from the server is set with textContent only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let lastFile = null;
  let run = 0;  // answers to an older run are dropped

  async function post(path, file, fields) {
    const form = new FormData();
    form.append("image", file, "photo");  // a neutral name, as app.js sends
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    try {
      const answer = await fetch(path, { method: "POST", body: form });
      return { ok: answer.ok, body: await answer.json().catch(() => null) };
    } catch (_) {
      return { ok: false, body: null };
    }
  }

  function errorText(result) {
    return result.body && result.body.error ? result.body.error.message : "The server did not answer.";
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

  function showThreshold() {
    const total = Number($("min-age").value) + Number($("buffer").value);
    $("threshold").textContent = Number.isFinite(total) ? String(total) : "?";
  }

  async function check(file) {
    const mine = ++run;
    lastFile = file;
    const screening = $("screening");
    const gap = $("gap");
    const screened = await post("/api/v1/screen", file, { min_age: $("min-age").value, buffer: $("buffer").value });
    if (mine !== run) return;
    if (screened.ok) {
      const b = screened.body;
      say(screening, b.decision, `${b.decision === "pass" ? "PASS" : "REFER"}: ${b.message}`);
    } else {
      say(screening, "", `Age check: ${errorText(screened)}`);
    }

    const age = $("your-age").value.trim();
    if (age === "") {
      gap.hidden = true;
      return;
    }
    const compared = await post("/api/v1/gap", file, { age, context: $("gap-context").value });
    if (mine !== run) return;
    if (!compared.ok) {
      say(gap, "", `Your age: ${errorText(compared)}`);
      return;
    }
    const b = compared.body;
    const which = b.faces > 1 ? ` (the largest of ${b.faces} faces)` : "";
    say(gap, b.unusual ? "unusual" : "",
      `Estimated ${Math.round(b.estimated_age)}${which}, stated ${b.stated_age}. ${b.message}`, b.note);
  }

  document.addEventListener("agedetect:photo", (event) => {
    if (event.detail.readable) {
      check(event.detail.file);
    } else {
      run++;
      lastFile = null;
      $("screening").hidden = true;
      $("gap").hidden = true;
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["min-age", "buffer", "your-age", "gap-context"]) {
      $(id).addEventListener("change", () => {
        showThreshold();
        if (lastFile) check(lastFile);
      });
    }
    showThreshold();
  });
})();
