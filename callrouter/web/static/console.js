// The secretary's console: her state bar and the call card, live over server-sent events.
import { api, setCsrf, SignedOut } from "/static/api.js";
import { renderCard, clearCard, markCall } from "/static/card.js";

const STATES = {
  offline: ["Déconnectée", "pill-offline"],
  available: ["Disponible", "pill-available"],
  ringing: ["Appel entrant", "pill-ringing"],
  on_call: ["En communication", "pill-oncall"],
  wrap_up: ["Post-appel", "pill-wrapup"],
  paused: ["En pause", "pill-paused"],
};
const $ = (id) => document.getElementById(id);
let me = null;
let since = null; // Date the current state started, when known
let offered = null; // call id of the card shown
const arrivals = new Map(); // call id -> Date it arrived

function signedOut(expired) {
  location.assign(expired ? "/console/connexion?expiree" : "/console/connexion");
}

async function guarded(action) {
  $("action-error").hidden = true;
  try {
    await action();
  } catch (e) {
    if (e instanceof SignedOut) return signedOut(true);
    $("action-error").textContent = e.message;
    $("action-error").hidden = false;
  }
}

function renderState() {
  if (!me) return;
  const [label, css] = STATES[me.state] || [me.state, "pill-offline"];
  const pill = $("state");
  pill.textContent = me.state === "paused" && me.paused ? `${label} — ${me.paused}` : label;
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
  $("login").hidden = me.logged_in;
  $("logout").hidden = !me.logged_in;
  $("pause-group").hidden = !me.logged_in || me.paused !== null;
  $("resume").hidden = !me.logged_in || me.paused === null;
  tick();
}

function tick() {
  const el = $("state-since");
  if (!since) {
    el.textContent = "";
    return;
  }
  const s = Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  el.textContent = `depuis ${h ? `${h} h ` : ""}${two(m)} min ${two(sec)} s`;
  if (offered && arrivals.has(offered)) {
    const waited = Math.floor((Date.now() - arrivals.get(offered).getTime()) / 1000);
    $("card-waited").textContent = `${Math.floor(waited / 60)} min ${two(waited % 60)} s`;
  }
}

async function refreshMe() {
  const previous = me && me.state;
  me = await api("GET", "/api/secretaries/me");
  if (previous !== me.state && since === null) since = new Date();
  renderState();
}

async function refreshCall() {
  const { call } = await api("GET", "/api/secretaries/me/call");
  if (call) showPop(call);
  else if (!offered) clearCard();
}

function showPop(pop) {
  offered = pop.call_id;
  renderCard(pop);
  tick();
}

function change(action, body) {
  return guarded(async () => {
    me = await api("POST", `/api/secretaries/me/${action}`, body);
    since = new Date();
    renderState();
  });
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    $("lost").hidden = true;
    guarded(async () => {
      await refreshMe();
      await refreshCall();
    });
  });
  events.addEventListener("error", () => {
    $("lost").hidden = false;
    if (events.readyState === EventSource.CLOSED) {
      // Refused (signed out, session expired) or the server is gone: ask whether we are signed in.
      api("GET", "/api/session")
        .then(() => setTimeout(connect, 2000))
        .catch((e) => (e instanceof SignedOut ? signedOut(true) : setTimeout(connect, 2000)));
    }
  });
  events.addEventListener("screen_pop", (e) => showPop(JSON.parse(e.data)));
  events.addEventListener("secretary", (e) => {
    const payload = JSON.parse(e.data);
    if (!me || payload.state !== me.state) since = new Date(payload.at);
    else if (since === null) since = new Date(payload.at);
    guarded(refreshMe);
  });
  events.addEventListener("call", (e) => {
    const payload = JSON.parse(e.data);
    if (payload.state === "arrived") arrivals.set(payload.call_id, new Date(payload.at));
    if (payload.call_id !== offered) return;
    if (payload.state === "answered") {
      markCall("En communication");
      tick();
      arrivals.delete(payload.call_id); // her wait is over: the figure stays as it was
    }
    if (payload.state === "queued" && payload.secretary === undefined) {
      // Put back in line (not taken in time): the card leaves her screen.
      offered = null;
      clearCard();
    }
    if (payload.state === "ended") {
      offered = null;
      markCall("Appel terminé");
      setTimeout(() => offered || clearCard(), 4000);
    }
  });
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
  $("signout").addEventListener("click", () =>
    guarded(async () => {
      await api("DELETE", "/api/session");
      signedOut(false);
    }));
  await guarded(refreshMe);
  setInterval(tick, 1000);
  connect();
}

start();
