// The team table (state, reason, time in state, calls today, softphone, the supervisor's actions)
// and the history of state changes.
import { api } from "/static/api.js";
import { $, el, clockDuration, hourMinute, capitalise } from "/static/wallboard.util.js";

export const STATES = {
  offline: ["Déconnectée", "pill-offline"],
  available: ["Disponible", "pill-available"],
  ringing: ["Sonnerie", "pill-ringing"],
  on_call: ["En communication", "pill-oncall"],
  wrap_up: ["Post-appel", "pill-wrapup"],
  paused: ["En pause", "pill-paused"],
};

function nameOf(member) {
  return member.display_name || member.username || member.phone;
}

function phone(member) {
  if (member.registered === null || member.registered === undefined) return el("span", { class: "phone", text: "Poste fixe" });
  return el("span", { class: `phone ${member.registered ? "phone-ok" : "phone-ko"}`,
    text: member.registered ? "Connecté" : "Non connecté" });
}

const chosen = new Map(); // secretary id -> the pause reason picked in her row (kept across refreshes)

function actions(member, reasons, act) {
  const out = el("div", { class: "row-actions" });
  if (member.state !== "offline" && member.paused === null) {
    const select = el("select", { "aria-label": `Motif de la pause de ${nameOf(member)}`, class: "reason",
      onchange: (e) => chosen.set(member.id, e.currentTarget.value) },
    reasons.map((r) => el("option", { value: r, text: capitalise(r), selected: chosen.get(member.id) === r })));
    out.append(select, el("button", { class: "force-pause", onclick: () => act(member, "pause", { reason: select.value }),
      text: "Forcer la pause" }));
  }
  if (member.paused !== null) {
    out.append(el("button", { class: "resume primary", onclick: () => act(member, "resume"), text: "Reprendre" }));
  }
  if (member.username && member.logged_in) {
    out.append(el("button", { class: "logout danger", onclick: () => act(member, "logout"), text: "Déconnecter" }));
  }
  return out;
}

export function renderTeam(team, reasons, act) {
  const body = $("team");
  const order = [...team].sort((a, b) => nameOf(a).localeCompare(nameOf(b), "fr"));
  body.replaceChildren(...order.map((m) => {
    const [label, css] = STATES[m.state] || [m.state, "pill-offline"];
    const reason = m.state === "paused" && m.paused ? m.paused : m.state === "offline" && m.paused ? `(pause : ${m.paused})` : "";
    return el("tr", { "data-secretary": m.id, "data-state": m.state },
      el("td", { class: "member" }, el("strong", { text: nameOf(m) }),
        m.missed_in_a_row ? el("span", { class: "missed", text: ` ${m.missed_in_a_row} manqué${m.missed_in_a_row > 1 ? "s" : ""}` }) : null),
      el("td", {}, el("span", { class: `pill ${css}`, "data-state": m.state, text: label }),
        reason ? el("span", { class: "reason-text", text: ` ${reason}` }) : null),
      el("td", { class: "since", "data-since": m.since || "", text: m.since ? clockDuration((Date.now() - Date.parse(m.since)) / 1000) : "—" }),
      el("td", { class: "calls", text: m.calls_today }),
      el("td", {}, phone(m)),
      el("td", {}, actions(m, reasons, act)));
  }));
  if (!order.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "Aucune secrétaire dans l'équipe." })));
  const counts = (s) => team.filter((m) => m.state === s).length;
  const inService = team.filter((m) => m.state !== "offline").length;
  $("team-summary").textContent = `${inService} en service · ${counts("available")} disponible${counts("available") > 1 ? "s" : ""} · ${counts("on_call")} en communication · ${counts("paused")} en pause`;
}

export function tickTeam() {
  for (const cell of document.querySelectorAll("#team td.since[data-since]")) {
    if (cell.dataset.since) cell.textContent = clockDuration((Date.now() - Date.parse(cell.dataset.since)) / 1000);
  }
}

// The history's changes (callrouter.domain.team.STATE_CHANGES), as the supervisor reads them.
const CHANGES = {
  logged_in: ["Début de service", "tone-ok"],
  logged_out: ["Fin de service", "tone-off"],
  paused: ["En pause", "tone-warn"],
  resumed: ["Reprise", "tone-ok"],
  registered: ["Téléphone connecté", "tone-info"],
  unregistered: ["Téléphone déconnecté", "tone-ko"],
};

function actor(by) {
  if (!by) return "—";
  if (by.startsWith("system:")) {
    const cause = { "system:missed_offers": "appels manqués", "system:registration": "téléphone",
      "system:restart": "redémarrage" }[by];
    return cause ? `système (${cause})` : "système";
  }
  return by;
}

export async function loadHistory(names) {
  let changes;
  try {
    ({ changes } = await api("GET", "/api/secretaries/history?limit=40"));
  } catch (e) {
    if (e.status === 404 || e.status === 503) {
      $("history-error").textContent = "Historique indisponible sur ce serveur.";
      $("history-error").hidden = false;
      return;
    }
    throw e;
  }
  $("history-error").hidden = true;
  $("history").replaceChildren(...changes.map((c) => {
    const [label, css] = CHANGES[c.state] || [c.state, ""];
    return el("li", { class: "change", "data-secretary": c.secretary, "data-state": c.state },
      el("time", { datetime: c.at, text: hourMinute(c.at) }),
      el("span", { class: "change-who", text: names(c.secretary) }),
      el("span", { class: `change-state ${css}`, text: c.reason ? `${label} (${c.reason})` : label }),
      el("span", { class: "change-by", text: c.by === c.secretary ? "par elle-même" : `par ${actor(c.by)}` }));
  }));
  if (!changes.length) $("history").append(el("li", { class: "empty", text: "Aucun changement d'état enregistré." }));
}
