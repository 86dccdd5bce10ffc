// The voicemail messages of her practices, played in the page (an <audio> element fed by the API:
// the session cookie travels with it, every listening is audited), each with its callback task
// taken, called back or marked done as the task list does; refreshed when a task changes.
// And, on the call card of a call in progress, « Le patient refuse l'enregistrement »: the recording
// stops and what was recorded is deleted (docs/recording.md).
import { api } from "/static/api.js";
import { $, coalesced, duration, el, flash, hour, phone } from "/static/console.format.js";
import { guarded } from "/static/console.guard.js";

const TASK_STATES = { open: "à rappeler", assigned: "pris en charge", calling: "appel en cours" };

let practices = [];
let names = {};
let me = null;

export function setup(who, mine, practiceNames) {
  me = who;
  practices = mine;
  names = practiceNames;
  followTheCard();
}

export const refresh = coalesced(load, 200);

async function load() {
  const lists = await Promise.all(practices.map((p) =>
    api("GET", `/api/practices/${encodeURIComponent(p)}/voicemails?open=1`).then((r) => r.voicemails)
      .catch((e) => e)));
  const failed = lists.find((r) => r instanceof Error);
  $("voicemails-error").hidden = !failed;
  if (failed) $("voicemails-error").textContent = `Messagerie incomplète : ${failed.message}`;
  const messages = lists.filter((r) => !(r instanceof Error)).flat();
  messages.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  render(messages);
}

function render(messages) {
  const list = $("voicemails");
  // A message being listened to keeps playing: its item is kept as it is.
  const playing = [...list.querySelectorAll("audio")].filter((a) => !a.paused).map((a) => a.closest("li"));
  const kept = new Map(playing.map((li) => [li.dataset.voicemailId, li]));
  list.replaceChildren(...messages.map((m) => kept.get(String(m.id)) || item(m)));
  $("voicemails-count").textContent = messages.length ? String(messages.length) : "";
  $("voicemails-empty").hidden = messages.length > 0;
}

function item(m) {
  const task = m.task;
  const mine = task && task.assigned_to === me;
  const li = el("li", { class: `task${mine ? " task-mine" : ""}`, "data-voicemail-id": String(m.id),
                        "data-source": "voicemail", "data-task-id": task ? task.id : null });
  li.append(el("div", { class: "task-head" },
    el("span", { class: "badge badge-voicemail", text: "messagerie" }),
    el("span", { class: "task-practice", text: names[m.practice] || m.practice })));
  li.append(el("p", { class: "task-number", text: task ? phone(task.number) : "Numéro masqué" }));
  const state = task ? (task.assigned_to ? (mine ? "pris par moi" : `pris par ${task.assigned_to}`) : TASK_STATES[task.state])
    : "sans rappel (numéro masqué)";
  li.append(el("p", { class: "task-meta", text:
    `Message de ${duration(m.duration_seconds || 0)} reçu à ${hour(m.created_at)}${m.truncated ? " (coupé à la durée maximale)" : ""} · ${state}` }));
  if (m.playable) {
    li.append(el("audio", { controls: true, preload: "none", src: m.audio_url, class: "voicemail-audio",
                            "aria-label": `Écouter le message reçu à ${hour(m.created_at)}` }));
  } else {
    li.append(el("p", { class: "task-note", text: "Message en cours de chiffrement : il sera écoutable dans un instant." }));
  }
  if (task && task.state !== "calling") {
    const actions = el("div", { class: "task-actions" });
    if (!mine) actions.append(button(m, "assign", "Je m'en occupe"));
    actions.append(button(m, "call", "Rappeler", "primary"), button(m, "done", "Fait"));
    li.append(actions);
  }
  li.append(el("p", { class: "task-error error", role: "alert", hidden: true, id: `voicemail-error-${m.id}` }));
  return li;
}

const DONE = {
  assign: "Message pris en charge.",
  call: "Votre téléphone va sonner : décrochez, le patient est appelé ensuite.",
  done: "Rappel du message marqué comme fait.",
};

function button(m, action, label, css = "") {
  const b = el("button", { type: "button", class: css, "data-action": action, text: label });
  b.addEventListener("click", () => guarded(async () => {
    await api("POST", `/api/tasks/${encodeURIComponent(m.task.id)}/${action}`);
    flash($("voicemails-notice"), DONE[action]);
    refresh();
  }, `voicemail-error-${m.id}`));
  return b;
}

// --- « le patient refuse » on the call card -------------------------------------------------------

function followTheCard() {
  const card = $("card");
  new MutationObserver(() => showRefusal(card)).observe(card, { attributes: true, attributeFilter: ["data-status", "data-call-id"] });
  $("card-refuse").addEventListener("click", () => refuse(card.dataset.callId));
}

function showRefusal(card) {
  const inCall = !card.hidden && card.dataset.status === "in_call";
  const button = $("card-refuse");
  if (button.dataset.callId !== card.dataset.callId) {
    button.dataset.callId = card.dataset.callId || "";
    $("card-recording").textContent = "";
    $("card-recording").hidden = true;
  }
  button.hidden = !inCall || button.dataset.refused === card.dataset.callId;
  if (inCall) recordingState(card.dataset.callId);
}

async function recordingState(callId) {
  // The record is written just after the bridge: asked once at once, once more a moment later.
  for (const wait of [300, 1500]) {
    await new Promise((r) => setTimeout(r, wait));
    if ($("card").dataset.callId !== callId) return;
    const state = await api("GET", `/api/calls/${encodeURIComponent(callId)}/recording`).catch(() => null);
    if (state && state.status === "recorded") {
      $("card-recording").textContent = "● Appel enregistré (formation et qualité)";
      $("card-recording").hidden = false;
      return;
    }
  }
}

function refuse(callId) {
  guarded(async () => {
    const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/recording/refuse`);
    $("card-refuse").dataset.refused = callId;
    $("card-refuse").hidden = true;
    $("card-recording").hidden = false;
    $("card-recording").textContent = result.recording === "none"
      ? "Refus noté : cet appel ne sera pas enregistré."
      : "Enregistrement arrêté et supprimé : le refus du patient est noté.";
  }, "card-refuse-error");
}
