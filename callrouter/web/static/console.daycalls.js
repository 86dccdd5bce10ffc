// The calls of the day of the card's practice (GET /api/calls?practice=&since=<local midnight>):
// time, number (as the API gives it to her), reason, wait and outcome in French.
import { api } from "/static/api.js";
import { $, OUTCOMES, coalesced, duration, el, hour, phone, todayMidnight } from "/static/console.format.js";

let practice = null;

export function showDayCalls(p) {
  if (p !== practice) {
    $("day-count").textContent = "";
    $("day-calls").replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "Chargement…" })));
  }
  practice = p;
  refreshDayCalls();
}

export const refreshDayCalls = coalesced(load, 400);

async function load() {
  if (!practice) return;
  const body = $("day-calls");
  let calls;
  try {
    const q = new URLSearchParams({ practice, since: todayMidnight(), limit: "200" });
    ({ calls } = await api("GET", `/api/calls?${q}`));
  } catch (e) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: `Appels du jour indisponibles : ${e.message}` })));
    return;
  }
  calls.sort((a, b) => (a.arrived_at < b.arrived_at ? 1 : -1));
  $("day-count").textContent = calls.length ? String(calls.length) : "";
  body.replaceChildren(...calls.map(row));
  if (!calls.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "Aucun autre appel aujourd'hui." })));
}

function row(c) {
  const outcome = c.ended_at ? OUTCOMES[c.outcome] || c.outcome || "—" : "En cours";
  const wait = c.queue_wait_seconds !== null && c.queue_wait_seconds !== undefined ? duration(c.queue_wait_seconds) : "—";
  return el("tr", { class: `outcome-${c.ended_at ? c.outcome : "live"}`, "data-call-id": c.id },
    el("td", { text: hour(c.arrived_at) }),
    el("td", { class: "num", text: phone(c.caller) }),
    el("td", { text: c.reason || "—" }),
    el("td", { text: wait }),
    el("td", { class: "outcome", text: outcome }));
}
