// Team settings: who covers which practice, queue and shared line, skill levels, pause reasons;
// saved through the team API (applied to live dispatch at once), errors shown in French.
import { api } from "/static/api.js";
import { $, el } from "/static/wallboard.util.js";

let team = null;

export function currentTeam() {
  return team;
}

function lineKey(line) {
  return line.startsWith("line:") ? line : `line:${line}`;
}

function box(key, label, checked, hint) {
  const id = `cov-${Math.random().toString(36).slice(2)}`;
  return el("label", { class: "check", for: id },
    el("input", { type: "checkbox", id, "data-key": key, checked }),
    el("span", { text: label }), hint ? el("small", { class: "muted", text: ` ${hint}` }) : null);
}

function level(practice, label, value) {
  return el("label", { class: "level" }, el("span", { text: label }),
    el("input", { type: "number", min: 1, max: 10, step: 1, inputmode: "numeric", "data-level": practice,
      value: value ?? "", placeholder: "—" }));
}

function card(s) {
  const has = new Set(s.coverage);
  const status = el("span", { class: "status-text", role: "status" });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const practices = team.practices.map((p) => el("fieldset", { class: "practice-box" },
    el("legend", { text: p.name }),
    box(`${p.id}/*`, "Tout le cabinet", has.has(`${p.id}/*`)),
    p.queues.map((q) => box(`${p.id}/${q.id}`, q.label, has.has(`${p.id}/${q.id}`),
      q.line ? `(ligne partagée « ${q.line.replace(/^line:/, "")} »)` : "")),
    level(p.id, "Niveau", (s.levels || {})[p.id])));
  const lines = team.lines.map((l) => box(lineKey(l), `Ligne partagée « ${lineKey(l).slice(5)} »`, has.has(lineKey(l))));
  const form = el("form", { class: "secretary-card", "data-secretary": s.id },
    el("header", {}, el("h3", { text: s.display_name || s.id }), el("span", { class: "muted", text: s.phone })),
    el("div", { class: "boxes" },
      el("fieldset", { class: "practice-box all" }, el("legend", { text: "Partout" }),
        box("*", "Tous les cabinets", has.has("*")), lines, level("*", "Niveau par défaut", (s.levels || {})["*"])),
      practices),
    el("div", { class: "card-actions" }, el("button", { type: "submit", class: "primary", text: "Enregistrer" }), status),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    status.textContent = "Enregistrement…";
    const checked = [...form.querySelectorAll("input[data-key]:checked")].map((i) => i.dataset.key);
    const coverage = [...s.coverage.filter((k) => checked.includes(k)), ...checked.filter((k) => !s.coverage.includes(k))];
    const levels = {};
    for (const input of form.querySelectorAll("input[data-level]")) {
      if (input.value.trim() === "") continue;
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 1 || n > 10) {
        status.textContent = "";
        error.textContent = "Un niveau est un nombre entier de 1 à 10.";
        error.hidden = false;
        return;
      }
      levels[input.dataset.level] = n;
    }
    try {
      await api("PUT", `/api/team/secretaries/${encodeURIComponent(s.id)}`, { coverage, levels });
      status.textContent = "Enregistré : appliqué dès le prochain appel.";
      form.dataset.saved = String(Date.now());
    } catch (e) {
      status.textContent = "";
      error.textContent = e.message || "Enregistrement impossible.";
      error.hidden = false;
    }
  });
  return form;
}

function reasonRow(value) {
  const input = el("input", { type: "text", maxlength: 40, value, "aria-label": "Motif de pause", class: "reason-input" });
  return el("li", {}, input, el("button", { type: "button", class: "link", text: "Retirer",
    onclick: (e) => e.currentTarget.closest("li").remove() }));
}

function renderReasons() {
  $("reasons").replaceChildren(...team.pause_reasons.map(reasonRow));
}

export async function loadSettings() {
  try {
    team = await api("GET", "/api/team");
  } catch (e) {
    team = null;
    $("settings-error").textContent = e.status === 404 || e.status === 503
      ? "Les réglages de l'équipe ne sont pas disponibles sur ce serveur."
      : e.message;
    $("settings-error").hidden = false;
    return null;
  }
  $("settings-error").hidden = true;
  $("team-version").textContent = `version ${team.version}`;
  const editing = document.activeElement && document.activeElement.closest("#settings");
  if (!editing) {
    $("coverage").replaceChildren(...team.secretaries.map(card));
    renderReasons();
  }
  return team;
}

export function wireSettings() {
  $("reason-add").addEventListener("click", () => {
    const row = reasonRow("");
    $("reasons").append(row);
    row.querySelector("input").focus();
  });
  $("reasons-save").addEventListener("click", async () => {
    $("reasons-error").hidden = true;
    const reasons = [...document.querySelectorAll("#reasons input")].map((i) => i.value.trim()).filter(Boolean);
    try {
      const saved = await api("PUT", "/api/team/pause-reasons", { reasons });
      $("reasons-status").textContent = `Enregistré : ${saved.pause_reasons.length} motif${saved.pause_reasons.length > 1 ? "s" : ""}.`;
    } catch (e) {
      $("reasons-status").textContent = "";
      $("reasons-error").textContent = e.message || "Enregistrement impossible.";
      $("reasons-error").hidden = false;
    }
  });
}
