// The recordings view of the wallboard (docs/recording.md): the recordings of the practices she may
// see, heard in an <audio> element fed by the API (the session's cookie; each listening audited by
// the server), the supervisor's evaluation note, and the on-demand requests for a secretary in
// training. Shown only to whoever may listen: the list route answers 403 otherwise.
import { api } from "/static/api.js";
import { $, clockDuration, el } from "/static/wallboard.util.js";

const NO_LISTEN = "Vous n'avez pas le droit d'écouter les enregistrements.";
const NO_NOTE = "Vous n'avez pas le droit d'évaluer les enregistrements.";
const NO_DEMAND = "Vous n'avez pas le droit de demander l'enregistrement des appels.";
const UNREADABLE = "L'enregistrement ne peut pas être lu (supprimé ou endommagé).";

function message(e, forbidden) {
  if (e.status === 403) return forbidden;
  if (e.status === 410) return UNREADABLE;
  if (e.status === 503) return "L'enregistrement des appels n'est pas activé sur ce serveur.";
  return e.message || "Le serveur ne répond pas.";
}

function say(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function when(iso) {
  return new Date(iso).toLocaleString("fr-FR", { day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit" });
}

// Whether she may listen: the tab shows only then (403: not hers; 503: no recording on this server).
export async function mayListen(practices) {
  if (!practices.length) return false;
  try {
    await api("GET", `/api/practices/${encodeURIComponent(practices[0].id)}/recordings?limit=1`);
    return true;
  } catch (e) {
    return false;
  }
}

function player(r, cell, error) {
  const audio = el("audio", { controls: true, preload: "auto", src: r.audio_url, "data-recording": r.id });
  audio.addEventListener("error", () => say(error, UNREADABLE));
  cell.replaceChildren(audio);
  audio.play().catch(() => undefined); // a browser may refuse to start by itself: the controls stay
}

function noteForm(r) {
  const note = r.note || {};
  const text = el("textarea", { rows: 2, maxlength: 4000, "aria-label": "Note d'évaluation", class: "note-text" });
  text.value = note.text || "";
  const score = el("select", { "aria-label": "Appréciation", class: "note-score" },
    el("option", { value: "", text: "—" }),
    [1, 2, 3, 4, 5].map((n) => el("option", { value: n, text: `${n} / 5`, selected: note.score === n })));
  const status = el("span", { class: "status-text", role: "status",
    text: note.author ? `Note de ${note.author}` : "" });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { class: "note" }, text, score,
    el("button", { type: "submit", text: "Enregistrer la note" }), status, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    if (!text.value.trim()) return say(error, "Écrivez la note avant de l'enregistrer.");
    status.textContent = "Enregistrement…";
    const body = { text: text.value };
    if (score.value) body.score = Number(score.value);
    try {
      const saved = await api("PUT", `/api/recordings/${r.id}/note`, body);
      status.textContent = `Note enregistrée (${saved.author}).`;
      form.dataset.saved = String(Date.now());
    } catch (e) {
      status.textContent = "";
      say(error, message(e, NO_NOTE));
    }
    return undefined;
  });
  return form;
}

function row(r, practiceName, secretaryName) {
  const cell = el("td", { class: "player" });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const listen = el("button", { type: "button", class: "primary", text: "Écouter",
    onclick: () => { say(error, ""); player(r, cell, error); } });
  cell.append(listen);
  return el("tr", { "data-recording-id": r.id },
    el("td", { text: practiceName }), el("td", { text: secretaryName }),
    el("td", { text: when(r.started_at) }), el("td", { class: "num", text: clockDuration(r.duration_seconds) }),
    cell, el("td", {}, noteForm(r), error));
}

export async function loadRecordings(practices, team) {
  const names = new Map(team.map((m) => [m.username || m.id, m.display_name || m.username || m.id]));
  const rows = [];
  try {
    for (const p of practices) {
      const list = await api("GET", `/api/practices/${encodeURIComponent(p.id)}/recordings`);
      for (const r of list.recordings) rows.push({ r, practice: p.name || p.id });
    }
  } catch (e) {
    say($("recordings-error"), message(e, NO_LISTEN));
    return;
  }
  say($("recordings-error"), "");
  rows.sort((a, b) => b.r.started_at.localeCompare(a.r.started_at));
  $("recordings-list").replaceChildren(...rows.map(({ r, practice }) =>
    row(r, practice, r.secretary ? names.get(r.secretary) || r.secretary : "—")));
  $("recordings-empty").hidden = rows.length > 0;
  $("recordings-summary").textContent = rows.length === 1 ? "1 enregistrement" : `${rows.length} enregistrements`;
  await loadDemands(team);
}

async function loadDemands(team) {
  let demands;
  try {
    demands = (await api("GET", "/api/recording-demands")).demands;
  } catch (e) {
    $("demands-panel").hidden = true; // on-demand requests are not hers to manage
    return;
  }
  $("demands-panel").hidden = false;
  const chosen = $("demand-secretary").value;
  $("demand-secretary").replaceChildren(...team.filter((m) => m.username).map((m) =>
    el("option", { value: m.username, text: m.display_name || m.username, selected: m.username === chosen })));
  const names = new Map(team.map((m) => [m.username || m.id, m.display_name || m.username || m.id]));
  $("demands").replaceChildren(...demands.map((d) => el("li", { "data-demand-id": d.id },
    el("span", { text: `${names.get(d.secretary) || d.secretary}${d.practice ? ` (${d.practice})` : ""} — jusqu'à ${when(d.ends_at)}, demandé par ${d.by}` }),
    el("button", { type: "button", class: "link", text: "Arrêter", onclick: () => stopDemand(d, team) }))));
  $("demands-empty").hidden = demands.length > 0;
}

async function stopDemand(d, team) {
  say($("demand-error"), "");
  try {
    await api("POST", `/api/recording-demands/${d.id}/stop`);
  } catch (e) {
    say($("demand-error"), message(e, NO_DEMAND));
  }
  await loadDemands(team);
}

export function wireRecordings(team) {
  $("demand-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    say($("demand-error"), "");
    const minutes = Number($("demand-minutes").value);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 10080) {
      return say($("demand-error"), "Une durée est un nombre entier de minutes, de 1 à 10 080 (une semaine).");
    }
    const body = { secretary: $("demand-secretary").value, minutes };
    if ($("demand-practice").value) body.practice = $("demand-practice").value;
    try {
      await api("POST", "/api/recording-demands", body);
      $("demand-status").textContent = "Demande enregistrée : ses prochains appels seront enregistrés.";
    } catch (e) {
      $("demand-status").textContent = "";
      say($("demand-error"), message(e, NO_DEMAND));
    }
    await loadDemands(team());
    return undefined;
  });
}

export function practiceChoices(practices) {
  const chosen = $("demand-practice").value;
  $("demand-practice").replaceChildren(el("option", { value: "", text: "Tous ses cabinets" }),
    ...practices.map((p) => el("option", { value: p.id, text: p.name || p.id, selected: p.id === chosen })));
}
