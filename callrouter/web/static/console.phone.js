// The console's phone: JsSIP registered at the edge over secure WebSocket as the signed-in
// secretary (GET /api/phone: her username and HA1, the edge's WSS port), so calls reach her in
// the browser as they reach a softphone. Ringing, answer, hang-up, mute, hold, DTMF (RFC 4733),
// transfer to a colleague (asked of the service: POST /api/calls/{id}/transfer), microphone and speaker choice, call quality; after a network
// loss JsSIP reconnects by itself and re-registers, and the state line says so meanwhile.
// The page records what it does on <body> (data-phone, data-phone-call) for checks.
import JsSIP from "/static/jssip.js";
import { api } from "/static/api.js";
import { $, clock } from "/static/console.format.js";
import * as media from "/static/console.phone.media.js";
import * as transfer from "/static/console.transfer.js";

let ua = null;
let conf = null;
let session = null;
let started = null;
let statsTimer = null;

const STATES = {
  connecting: ["Téléphone : connexion…", "pill-paused"],
  registered: ["Téléphone du navigateur connecté", "pill-available"],
  lost: ["Téléphone : réseau perdu — reconnexion…", "pill-ringing"],
  refused: ["Téléphone : enregistrement refusé", "pill-offline"],
  stopped: ["Téléphone arrêté", "pill-offline"],
};

function state(name, detail) {
  const [label, css] = STATES[name];
  const el = $("webphone-state");
  el.textContent = detail ? `${label} (${detail})` : label;
  el.className = `pill ${css}`;
  document.body.dataset.phone = name;
}

function phase(name) {
  $("webphone").dataset.phase = name;
  $("webphone-incoming").hidden = name !== "ringing";
  $("webphone-incall").hidden = name !== "incall";
  document.body.dataset.phoneCall = name;
}

function fail(message) {
  const el = $("webphone-error");
  el.textContent = message || "";
  el.hidden = !message;
}

export async function setup() {
  try {
    conf = await api("GET", "/api/phone");
  } catch (e) {
    conf = null;
  }
  if (!conf || !conf.enabled) {
    document.body.dataset.phone = "none";
    return; // no phone on this server or no SIP password: her softphone answers
  }
  $("webphone").hidden = false;
  phase("idle");
  media.setupRing();
  media.setupDevices(() => switchMic());
  keypad();
  transferTargets();
  wire();
  start();
  window.addEventListener("offline", () => state("lost"));
  window.addEventListener("beforeunload", () => ua && ua.stop());
}

function start() {
  const host = location.hostname;
  const socket = new JsSIP.WebSocketInterface(`wss://${host}:${conf.wss_port}`);
  ua = new JsSIP.UA({
    sockets: [socket],
    uri: `sip:${conf.username}@${host}`,
    authorization_user: conf.username,
    realm: conf.realm,
    ha1: conf.ha1,
    display_name: conf.display_name,
    register: true,
    register_expires: 300,
    session_timers: false,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 10,
    user_agent: "callrouter-console",
  });
  state("connecting");
  ua.on("disconnected", () => state("lost"));
  ua.on("registered", () => {
    state("registered");
    fail("");
  });
  ua.on("unregistered", () => state("connecting"));
  ua.on("registrationFailed", (e) => {
    state("refused", e.cause);
    fail("L'enregistrement du téléphone a été refusé : vérifiez votre mot de passe SIP auprès de l'administrateur.");
  });
  ua.on("newRTCSession", (e) => {
    if (e.originator !== "remote") return;
    if (session) {
      e.session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    incoming(e.session, e.request);
  });
  ua.start();
}

function incoming(s, request) {
  session = s;
  const name = request.from.display_name || request.from.uri.user || "Appel";
  $("webphone-peer").textContent = `Appel entrant : ${name}`;
  phase("ringing");
  media.startRing();
  s.on("peerconnection", (e) => attach(e.peerconnection));
  s.on("accepted", () => {
    media.stopRing();
    started = Date.now();
    $("webphone-peer").textContent = `En ligne : ${name}`;
    phase("incall");
    statsTimer = setInterval(stats, 2000);
  });
  s.on("ended", () => finished("Appel terminé"));
  s.on("failed", (e) => finished(e.originator === "remote" ? "Appel manqué" : "Appel terminé"));
  s.on("hold", () => held(true));
  s.on("unhold", () => held(false));
}

function attach(pc) {
  pc.addEventListener("track", (e) => {
    const el = $("webphone-audio");
    el.srcObject = e.streams[0] || new MediaStream([e.track]);
    media.applySpeaker();
    el.play().catch(() => {});
  });
}

function finished(text) {
  media.stopRing();
  if (statsTimer) clearInterval(statsTimer);
  statsTimer = null;
  session = null;
  started = null;
  $("webphone-peer").textContent = text;
  $("webphone-timer").textContent = "";
  media.showQuality(null);
  $("webphone-mute").setAttribute("aria-pressed", "false");
  $("webphone-mute").textContent = "Couper le micro";
  held(false);
  phase("idle");
}

function held(on) {
  $("webphone-hold").setAttribute("aria-pressed", String(on));
  $("webphone-hold").textContent = on ? "Reprendre l'appel" : "Mettre en attente";
}

async function stats() {
  if (!session || !session.connection) return;
  $("webphone-timer").textContent = started ? clock((Date.now() - started) / 1000) : "";
  try {
    media.showQuality(await media.readQuality(session.connection));
  } catch (e) {
    media.showQuality(null);
  }
}

function wire() {
  $("webphone-answer").addEventListener("click", () => {
    if (!session) return;
    media.stopRing();
    session.answer({ mediaConstraints: media.audioConstraints(), pcConfig: { iceServers: [] } });
    media.listDevices();
  });
  $("webphone-decline").addEventListener("click", () => session && session.terminate({ status_code: 486, reason_phrase: "Busy Here" }));
  $("webphone-hangup").addEventListener("click", () => session && session.terminate());
  $("webphone-mute").addEventListener("click", () => {
    if (!session) return;
    const muted = session.isMuted().audio;
    if (muted) session.unmute({ audio: true });
    else session.mute({ audio: true });
    $("webphone-mute").setAttribute("aria-pressed", String(!muted));
    $("webphone-mute").textContent = muted ? "Couper le micro" : "Réactiver le micro";
  });
  $("webphone-hold").addEventListener("click", () => {
    if (!session) return;
    if (session.isOnHold().local) session.unhold();
    else session.hold();
  });
  // The service hands the call to the colleague (the patient on hold meanwhile): no SIP REFER.
  $("webphone-transfer-to").addEventListener("focus", () => transfer.open($("webphone-transfer-to"), null));
  $("webphone-transfer").addEventListener("click", () => {
    if (!session) return;
    fail("");
    transfer.send($("webphone-transfer-to"));
  });
}

function keypad() {
  const pad = $("webphone-keypad");
  for (const key of "123456789*0#") {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = key;
    b.dataset.digit = key;
    b.addEventListener("click", () => session && session.sendDTMF(key, { transportType: "RFC2833", duration: 160 }));
    pad.append(b);
  }
}

function transferTargets() {
  const select = $("webphone-transfer-to");
  const none = document.createElement("option");
  none.value = "";
  none.textContent = conf.colleagues.length ? "Transférer à…" : "Aucune collègue";
  select.append(none);
  for (const c of conf.colleagues) {
    const option = document.createElement("option");
    option.value = c.username;
    option.textContent = c.display_name;
    select.append(option);
  }
}

// A new microphone during a call: its track replaces the one being sent.
async function switchMic() {
  if (!session || !session.connection) return;
  try {
    const stream = await navigator.mediaDevices.getUserMedia(media.audioConstraints());
    const track = stream.getAudioTracks()[0];
    const sender = session.connection.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (sender) await sender.replaceTrack(track);
  } catch (e) {
    fail("Ce micro n'est pas disponible.");
  }
}
