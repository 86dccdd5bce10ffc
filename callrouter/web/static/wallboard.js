// The supervisors' wallboard: tiles per practice and shared line, the team, escalations, the
// history of states, and the team settings. Live over server-sent events (GET /api/events): each
// relevant event asks for a refresh of what it changed, at most one per second; no polling loop.
import { api, setCsrf, SignedOut } from "/static/api.js";
import { renderChains } from "/static/wallboard.chains.js";
import { loadRecordings, mayListen, practiceChoices, wireRecordings } from "/static/wallboard.recordings.js";
import { currentTeam, loadSettings, wireSettings } from "/static/wallboard.settings.js";
import { loadHistory, renderTeam, tickTeam } from "/static/wallboard.team.js";
import { renderTiles, tickTiles } from "/static/wallboard.tiles.js";
import { renderWatch } from "/static/wallboard.watch.js";
import { loadWatchHistory } from "/static/wallboard.watch.history.js";
import { $, coalesced } from "/static/wallboard.util.js";

let session = null;
let board = null;
let readAt = 0; // Date.now() when the board was read: the waits tick on from there
let names = new Map(); // secretary id -> display name
let recordingsAsked = false; // whether she may listen has been asked (once, with the first board)
let watchOverview = null; // the last GET /api/watch: the « Renvois » view draws its practices

function signedOut(expired) {
  location.assign(expired ? "/console/connexion?expiree" : "/console/connexion");
}

function failed(where, e) {
  if (e instanceof SignedOut) return signedOut(true);
  $(where).textContent = e.message || "Le serveur ne répond pas.";
  $(where).hidden = false;
  return undefined;
}

async function refreshBoard() {
  try {
    board = await api("GET", "/api/wallboard");
  } catch (e) {
    if (e.status === 403) {
      // Not a supervisor: the page says where to go instead.
      $("forbidden").hidden = false;
      $("board").hidden = true;
      $("settings").hidden = true;
      $("recordings").hidden = true;
      document.querySelector(".views").hidden = true;
      return undefined;
    }
    return failed("board-error", e);
  }
  readAt = Date.now();
  $("board-error").hidden = true;
  names = new Map(board.team.map((m) => [m.id, m.display_name || m.username || m.phone]));
  renderTiles(board);
  renderTeam(board.team, reasons(), act);
  renderChains(board.escalations, take);
  document.body.classList.toggle("has-alarm", board.practices.some((p) => p.alarm));
  document.body.dataset.refreshed = String(readAt);
  if (!recordingsAsked) {
    recordingsAsked = true;
    const may = await mayListen(board.practices);
    $("view-recordings").hidden = !may;
    document.body.dataset.recordings = may ? "1" : "0"; // asked: the tab is as it will stay
  }
  return undefined;
}

async function refreshRecordings() {
  if (!board) return;
  practiceChoices(board.practices);
  await loadRecordings(board.practices, board.team);
}

async function refreshHistory() {
  try {
    await loadHistory((id) => names.get(id) || id);
  } catch (e) {
    failed("history-error", e);
  }
}

async function refreshSettings() {
  await loadSettings();
  if (board) renderTeam(board.team, reasons(), act);
}

async function refreshWatch() {
  try {
    watchOverview = await api("GET", "/api/watch");
    renderWatch(watchOverview, acknowledgeWatch);
    $("view-renvois").hidden = !watchOverview.practices.length;
    $("watch-error").hidden = true;
  } catch (e) {
    if (e.status === 503 || e.status === 403) {
      $("watch-panel").hidden = true; // no forwarding watch on this server, or not hers to see
      return undefined;
    }
    failed("watch-error", e);
  }
  if (!$("renvois").hidden) watchHistorySoon();
  return undefined;
}

async function refreshWatchHistory() {
  try {
    if (!watchOverview) watchOverview = await api("GET", "/api/watch");
    await loadWatchHistory(watchOverview);
    $("watch-history-error").hidden = true;
  } catch (e) {
    failed("watch-history-error", e);
  }
}

const boardSoon = coalesced(refreshBoard);
const watchSoon = coalesced(refreshWatch);
const watchHistorySoon = coalesced(refreshWatchHistory);
const historySoon = coalesced(refreshHistory);
const settingsSoon = coalesced(refreshSettings);
const recordingsSoon = coalesced(refreshRecordings);

function reasons() {
  const team = currentTeam();
  return (team && team.pause_reasons) || (session && session.pause_reasons) || ["pause"];
}

async function act(member, action, body) {
  $("team-error").hidden = true;
  try {
    await api("POST", `/api/secretaries/${encodeURIComponent(member.id)}/${action}`, body);
    boardSoon();
    historySoon();
  } catch (e) {
    failed("team-error", e);
  }
}

async function take(chain, button) {
  $("escalations-error").hidden = true;
  button.disabled = true;
  try {
    await api("POST", `/api/escalations/${chain.id}/take`);
    boardSoon();
  } catch (e) {
    button.disabled = false;
    failed("escalations-error", e);
    boardSoon();
  }
}

async function acknowledgeWatch(run, button) {
  $("watch-error").hidden = true;
  button.disabled = true;
  try {
    await api("POST", `/api/watch/${run.id}/acknowledge`);
  } catch (e) {
    button.disabled = false;
    failed("watch-error", e);
  }
  watchSoon();
}

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
  if (board) tickTiles((Date.now() - readAt) / 1000);
  tickTeam();
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    $("lost").hidden = true;
    boardSoon();
    historySoon();
    settingsSoon();
    watchSoon();
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
  for (const kind of ["queue", "call", "escalation"]) events.addEventListener(kind, boardSoon);
  events.addEventListener("secretary", () => {
    boardSoon();
    historySoon();
  });
  events.addEventListener("watch", watchSoon);
  events.addEventListener("team", () => {
    settingsSoon();
    boardSoon();
  });
}

function show(view) {
  for (const name of ["board", "settings", "recordings", "renvois"]) {
    $(name).hidden = name !== view;
    $(`view-${name}`).setAttribute("aria-pressed", String(name === view));
  }
  if (view === "settings") settingsSoon();
  if (view === "recordings") recordingsSoon();
  if (view === "renvois") watchHistorySoon();
}

async function start() {
  try {
    session = await api("GET", "/api/session");
  } catch (e) {
    return signedOut(false);
  }
  setCsrf(session.csrf_token);
  $("who").textContent = session.display_name || session.username;
  $("view-board").addEventListener("click", () => show("board"));
  $("view-settings").addEventListener("click", () => show("settings"));
  $("view-recordings").addEventListener("click", () => show("recordings"));
  $("view-renvois").addEventListener("click", () => show("renvois"));
  $("watch-open-history").addEventListener("click", () => show("renvois"));
  $("signout").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/session");
    } finally {
      signedOut(false);
    }
  });
  wireSettings();
  wireRecordings(() => (board ? board.team : []));
  tick();
  setInterval(tick, 1000);
  connect();
  return undefined;
}

start();
