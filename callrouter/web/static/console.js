// The secretary's console: her state bar, the call card, the callback tasks, live over
// server-sent events (GET /api/events), which reconnect by themselves after a restart.
import { api, setCsrf, SignedOut } from "/static/api.js";
import * as card from "/static/card.js";
import { refreshDayCalls, showDayCalls } from "/static/console.daycalls.js";
import { $, flash, phone } from "/static/console.format.js";
import { guarded, signedOut } from "/static/console.guard.js";
import * as notify from "/static/console.notify.js";
import { focusTiers, loadOnCall, setup as setupOnCall } from "/static/console.oncall.js";
import * as shortcuts from "/static/console.shortcuts.js";
import * as tasks from "/static/console.tasks.js";
import * as transfer from "/static/console.transfer.js";
import * as voicemail from "/static/console.voicemail.js";

const STATES = {
  offline: ["Déconnectée", "pill-offline"],
  available: ["Disponible", "pill-available"],
  ringing: ["Appel entrant", "pill-ringing"],
  on_call: ["En communication", "pill-oncall"],
  wrap_up: ["Post-appel", "pill-wrapup"],
  paused: ["En pause", "pill-paused"],
};
const FRENCH_NUMBER = /^(?:0[1-9]\d{8}|\+(?:33|262|590|594|596|269|687|689)\d{9})$/;
let me = null;
let since = null; // Date the current state started, when known

function renderState() {
  if (!me) return;
  const [label, css] = STATES[me.state] || [me.state, "pill-offline"];
  const pill = $("state");
  const reason = me.state === "paused" && me.paused && me.paused.toLowerCase() !== "pause" ? me.paused : null;
  pill.textContent = reason ? `${label} — ${reason}` : label;
  pill.className = `pill ${css}`;
  pill.dataset.state = me.state;
  const phone = $("phone");
  if (me.registered === null) {
    phone.textContent = "Poste fixe";
    phone.className = "phone";
  } else {
    phone.textContent = me.registered ? "Téléphone connecté" : "Téléphone non connecté";
    phone.className = me.registered ? "phone phone-ok" : "phone phone-ko";
  }
  const n = me.calls_today || 0;
  $("calls-count").textContent = n ? `${n} appel${n > 1 ? "s" : ""} pris aujourd'hui` : "";
  $("login").hidden = me.logged_in;
  $("logout").hidden = !me.logged_in;
  $("pause-group").hidden = !me.logged_in || me.paused !== null;
  $("resume").hidden = !me.logged_in || me.paused === null;
  tick();
}

function tick() {
  const el = $("state-since");
  if (since) {
    const s = Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (v) => String(v).padStart(2, "0");
    el.textContent = `depuis ${h ? `${h} h ` : ""}${two(m)} min ${two(sec)} s`;
  } else {
    el.textContent = "";
  }
  card.tick();
}

async function refreshMe() {
  const previous = me && me.state;
  try {
    me = await api("GET", "/api/secretaries/me");
  } catch (e) {
    if (e.status !== 404) throw e;
    notInAQueue();
    return;
  }
  if (previous !== me.state && since === null) since = new Date();
  renderState();
}

// A user who is in no queue (a supervisor, a secretary not yet in the team): the card and the
// tasks work, there is no state to change.
function notInAQueue() {
  me = null;
  $("state").textContent = "Hors des files d'appels";
  $("state").className = "pill pill-offline";
  $("state").dataset.state = "none";
  for (const id of ["login", "logout", "pause-group", "resume"]) $(id).hidden = true;
  $("phone").textContent = "Vous ne recevez pas d'appels : demandez à être ajoutée à l'équipe.";
  $("phone").className = "phone";
}

async function refreshCall() {
  if (!me) return;
  const { call } = await api("GET", "/api/secretaries/me/call");
  if (call) {
    showPop(call, false);
    if (me && me.state === "on_call") {
      card.markAnswered(since ? since.toISOString() : null);
      transfer.onCall(call.call_id);
    }
  }
}

function showPop(pop, fresh) {
  const shown = card.current();
  if (shown && shown.pop.call_id === pop.call_id && shown.status !== "ended") return; // the same call, again
  card.renderCard(pop);
  $("message-number").value = pop.caller && pop.caller.number ? phone(pop.caller.number) : "";
  $("message-note").value = "";
  $("message-result").hidden = true;
  loadOnCall(pop.practice, pop.call_id);
  showDayCalls(pop.practice);
  if (fresh) notify.offered(pop);
}

function change(action, body) {
  return guarded(async () => {
    me = await api("POST", `/api/secretaries/me/${action}`, body);
    since = new Date();
    renderState();
  });
}

function onCallEvent(payload) {
  transfer.onCallEvent(payload);
  const shown = card.current();
  if (!shown || payload.call_id !== shown.pop.call_id) {
    if (payload.state === "ended" && shown && payload.practice === shown.pop.practice) refreshDayCalls();
    return;
  }
  if (payload.state === "answered") {
    if (me && payload.secretary !== me.id) card.markTaken();
    else {
      card.markAnswered(payload.at);
      transfer.onCall(payload.call_id);
    }
  } else if (payload.state === "transferred" && me) {
    if (payload.to === me.id) { // she took it over from a colleague
      card.markAnswered(payload.at);
      transfer.onCall(payload.call_id);
    } else if (payload.secretary === me.id) card.markTaken();
  } else if (payload.state === "transfer_failed" && me && payload.to === me.id) {
    card.clearCard(); // not taken: the call went back to her colleague, its card leaves her screen
  } else if (payload.state === "queued" && payload.secretary === undefined && shown.status === "ringing") {
    card.clearCard(); // put back in line (not taken in time): the card leaves her screen
  } else if (payload.state === "ended") {
    transfer.onCall(null);
    card.markEnded(payload.at);
    refreshDayCalls();
  }
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    $("lost").hidden = true;
    document.body.dataset.stream = "open";
    guarded(async () => {
      await refreshMe();
      await refreshCall();
    });
    tasks.refresh();
    voicemail.refresh();
  });
  events.addEventListener("error", () => {
    $("lost").hidden = false;
    document.body.dataset.stream = "lost";
    if (events.readyState === EventSource.CLOSED) {
      // Refused (signed out, session expired) or the server is gone: ask whether we are signed in.
      api("GET", "/api/session")
        .then(() => setTimeout(connect, 2000))
        .catch((e) => (e instanceof SignedOut ? signedOut(true) : setTimeout(connect, 2000)));
    }
  });
  events.addEventListener("screen_pop", (e) => showPop(JSON.parse(e.data), true));
  events.addEventListener("secretary", (e) => {
    const payload = JSON.parse(e.data);
    if (!me || payload.state !== me.state || since === null) since = new Date(payload.at);
    guarded(refreshMe);
  });
  events.addEventListener("call", (e) => onCallEvent(JSON.parse(e.data)));
  events.addEventListener("task", () => {
    tasks.refresh();
    voicemail.refresh(); // a message's task changed, or a new message came with its task
  });
}

function createTask(event) {
  event.preventDefault();
  const shown = card.current();
  const result = $("message-result");
  const number = $("message-number").value.replace(/[\s.\-()]/g, "");
  if (!FRENCH_NUMBER.test(number)) {
    result.textContent = "Numéro invalide : saisissez un numéro français à 10 chiffres, par exemple 06 12 34 56 78.";
    result.className = "notice ko";
    result.hidden = false;
    $("message-number").focus();
    return;
  }
  const body = { number, expires_in_minutes: Number($("message-expiry").value) };
  const note = $("message-note").value.trim();
  if (note) body.note = note;
  guarded(async () => {
    await api("POST", `/api/practices/${encodeURIComponent(shown.pop.practice)}/tasks`, body);
    $("message-note").value = "";
    flash(result, "Rappel enregistré : il figure dans la liste des rappels.");
    tasks.refresh();
  }, "message-result");
}

async function practicesOf(session) {
  // Limited to her practices; a supervisor sees every practice with rules loaded.
  let ids = session.practices;
  if (!["secretary", "practitioner"].includes(session.role)) {
    const status = await api("GET", "/api/dialplans/status").catch(() => ({ dialplans: [] }));
    ids = status.dialplans.map((d) => d.practice);
  }
  const names = {};
  await Promise.all(ids.map((p) => api("GET", `/api/practices/${encodeURIComponent(p)}/card`)
    .then((c) => { names[p] = c.name; }).catch(() => {})));
  return { ids, names };
}

function shortcutActions() {
  const pauseOrResume = () => {
    if (!me || !me.logged_in) return guarded(async () => { throw new Error("Commencez d'abord votre service."); });
    return me.paused === null ? change("pause", { reason: $("pause-reason").value }) : change("resume");
  };
  return {
    p: pauseOrResume,
    s: () => (me && me.logged_in ? change("logout") : change("login")),
    t: () => tasks.focusTasks(),
    a: () => {
      const link = $("card-booking-link");
      if (link && !$("card").hidden) link.click();
    },
    e: () => { if (card.current()) focusTiers(); },
    m: () => { if (card.current()) ($("message-number").value ? $("message-note") : $("message-number")).focus(); },
    Escape: () => {
      const shown = card.current();
      if (shown && (shown.status === "ended" || shown.status === "taken")) card.clearCard();
    },
  };
}

async function start() {
  let session;
  try {
    session = await api("GET", "/api/session");
  } catch (e) {
    return signedOut(false);
  }
  setCsrf(session.csrf_token);
  $("who").textContent = session.display_name || session.username;
  // Supervisors and administrators watch the team from the wallboard: one click away.
  $("to-wallboard").hidden = !["supervisor", "administrator"].includes(session.role);
  const select = $("pause-reason");
  for (const reason of session.pause_reasons) {
    const option = document.createElement("option");
    option.value = reason;
    option.textContent = reason.charAt(0).toUpperCase() + reason.slice(1);
    select.append(option);
  }
  $("login").addEventListener("click", () => change("login"));
  $("logout").addEventListener("click", () => change("logout"));
  $("pause").addEventListener("click", () => change("pause", { reason: select.value }));
  $("resume").addEventListener("click", () => change("resume"));
  $("card-close").addEventListener("click", () => card.clearCard());
  $("message-form").addEventListener("submit", createTask);
  $("signout").addEventListener("click", () =>
    guarded(async () => {
      await api("DELETE", "/api/session");
      signedOut(false);
    }));
  setupOnCall();
  transfer.setup();
  notify.setup();
  shortcuts.setup(shortcutActions());
  const { ids, names } = await practicesOf(session);
  tasks.setup(session.username, ids, names);
  voicemail.setup(session.username, ids, names);
  // The browser's phone, loaded on its own: without it (not built, or refused) the console works.
  import("/static/console.phone.js").then((m) => m.setup()).catch(() => {
    document.body.dataset.phone = "unavailable";
  });
  await guarded(refreshMe);
  setInterval(tick, 1000);
  connect();
}

start();
