// The shared list of callback tasks of her practices: taken (« Je m'en occupe »), called back (her
// phone rings first, then the patient's), done, or cancelled with a reason. Refreshed when the
// event stream says a task changed (coalesced), never by polling.
import { api } from "/static/api.js";
import { $, coalesced, el, flash, hour, phone } from "/static/console.format.js";
import { guarded } from "/static/console.guard.js";

const SOURCES = { voicemail: "messagerie", overflow: "rappel demandé", secretary: "secrétariat",
                  node_lost: "appel interrompu" };
const RECEIVED = { voicemail: "Message reçu", node_lost: "Appel interrompu" };
const STATES = { open: "à traiter", assigned: "pris en charge", calling: "appel en cours" };
const SOON_MS = 30 * 60 * 1000;

let practices = []; // the practice ids whose tasks she sees
let names = {}; // practice id -> name
let me = null; // her username
let cancelling = null; // the task whose cancel reason is being typed

export function setup(who, mine, practiceNames) {
  me = who;
  practices = mine;
  names = practiceNames;
}

export const refresh = coalesced(load, 200);

async function load() {
  const lists = await Promise.all(practices.map((p) =>
    api("GET", `/api/practices/${encodeURIComponent(p)}/tasks`).then((r) => r.tasks).catch((e) => e)));
  const failed = lists.find((r) => r instanceof Error);
  $("tasks-error").hidden = !failed;
  if (failed) $("tasks-error").textContent = `Liste des rappels incomplète : ${failed.message}`;
  const tasks = lists.filter((r) => !(r instanceof Error)).flat();
  tasks.sort((a, b) => (a.place_at < b.place_at ? -1 : a.place_at > b.place_at ? 1 : 0));
  render(tasks);
}

function render(tasks) {
  const list = $("tasks");
  // Her focus survives the refresh: the same button of the same task, or the list.
  const active = document.activeElement;
  const item_ = active && active !== list && list.contains(active) ? active.closest("li[data-task-id]") : null;
  const focused = item_ && active.dataset.action ? [item_.dataset.taskId, active.dataset.action] : null;
  const hadFocus = active && list.contains(active);
  list.replaceChildren(...tasks.map(item));
  $("tasks-count").textContent = tasks.length ? String(tasks.length) : "";
  $("tasks-empty").hidden = tasks.length > 0;
  if (focused) {
    const again = list.querySelector(`li[data-task-id="${CSS.escape(focused[0])}"] [data-action="${focused[1]}"]`);
    (again || list).focus();
  } else if (hadFocus && !list.contains(document.activeElement)) {
    list.focus();
  }
}

function item(t) {
  const mine = t.assigned_to === me;
  const soon = new Date(t.expires_at).getTime() - Date.now() < SOON_MS;
  const li = el("li", { class: `task task-${t.state}${mine ? " task-mine" : ""}`, "data-task-id": t.id,
                        "data-state": t.state, "data-source": t.source });
  li.append(el("div", { class: "task-head" },
    el("span", { class: `badge badge-${t.source}`, text: SOURCES[t.source] || t.source }),
    el("span", { class: "task-practice", text: names[t.practice] || t.practice })));
  li.append(el("p", { class: "task-number", text: phone(t.number) }));
  if (t.note) li.append(el("p", { class: "task-note", text: t.note }));
  const who = t.assigned_to ? (mine ? "pris par moi" : `pris par ${t.assigned_to}`) : STATES[t.state];
  const attempts = t.attempts ? ` · ${t.attempts} tentative${t.attempts > 1 ? "s" : ""}` : "";
  li.append(el("p", { class: "task-meta" },
    `${RECEIVED[t.source] || "Demande reçue"} à ${hour(t.created_at)} · `,
    el("span", { class: soon ? "warn" : "", text: `à traiter avant ${hour(t.expires_at)}` }),
    ` · ${t.state === "calling" ? STATES.calling : who}${attempts}`));
  const actions = el("div", { class: "task-actions" });
  if (!mine && t.state !== "calling") actions.append(button(t, "assign", "Je m'en occupe"));
  if (t.state !== "calling") actions.append(button(t, "call", "Rappeler", "primary"));
  actions.append(button(t, "done", "Fait"));
  actions.append(button(t, "cancel", "Annuler", "link"));
  li.append(actions);
  if (cancelling === t.id) li.append(cancelForm(t));
  li.append(el("p", { class: "task-error error", role: "alert", hidden: true, id: `task-error-${t.id}` }));
  return li;
}

function button(t, action, label, css = "") {
  const b = el("button", { type: "button", class: css, "data-action": action, text: label });
  b.addEventListener("click", () => act(t, action));
  return b;
}

function cancelForm(t) {
  const form = el("form", { class: "cancel-form" });
  const input = el("input", { name: "reason", maxlength: "200", placeholder: "Motif (ex. patiente rappelée par le cabinet)",
                              "aria-label": "Motif de l'annulation", autocomplete: "off" });
  form.append(input, el("button", { type: "submit", class: "danger", text: "Confirmer l'annulation" }),
    el("button", { type: "button", class: "link", "data-action": "keep", text: "Garder" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cancelling = null;
    run(t, "cancel", { reason: input.value.trim() || "annulé depuis la console" });
  });
  form.querySelector("[data-action=keep]").addEventListener("click", () => {
    cancelling = null;
    refresh();
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

function act(t, action) {
  if (action === "cancel") {
    cancelling = t.id;
    load();
    return;
  }
  run(t, action);
}

const DONE = {
  assign: "Rappel pris en charge.",
  call: "Votre téléphone va sonner : décrochez, le patient est appelé ensuite.",
  done: "Rappel marqué comme fait.",
  cancel: "Rappel annulé.",
};

function run(t, action, body) {
  return guarded(async () => {
    const result = await api("POST", `/api/tasks/${encodeURIComponent(t.id)}/${action}`, body);
    flash($("tasks-notice"), DONE[action]);
    refresh();
    return result;
  }, `task-error-${t.id}`);
}

// The T shortcut: the first task's first button, or the list itself.
export function focusTasks() {
  const first = $("tasks").querySelector("button");
  (first || $("tasks")).focus();
  $("tasks").scrollIntoView({ block: "nearest" });
}
