// The call card: the screen-pop object (the same as on MQTT) drawn as the secretary reads it, and
// its status following the call: ringing, in call (with a timer), ended (kept until the next call
// or until she closes it). The wait counts from when the caller entered the queue.
import { $, clock, duration, el, phone } from "/static/console.format.js";

const STATUS = { ringing: "Appel entrant", in_call: "En communication", ended: "Appel terminé", taken: "Pris par une collègue" };
let shown = null; // {pop, status, answeredAt: ms, endedAt: ms}

function text(id, value) {
  $(id).textContent = value || "—";
}

function cell(row, value) {
  row.append(el("td", { text: value || "—" }));
}

export function current() {
  return shown;
}

export function renderCard(pop) {
  const card = pop.card || {};
  shown = { pop, status: "ringing", answeredAt: null, endedAt: null };
  $("idle").hidden = true;
  $("card").hidden = false;
  $("card").dataset.callId = pop.call_id;
  $("card").dataset.practice = pop.practice;
  $("card").dataset.shownAt = String(Date.now());
  setStatus("ringing");
  text("card-practice", pop.practice_name || pop.practice);
  $("card-site").hidden = !pop.site;
  $("card-site").textContent = pop.site ? `${pop.site.name}${pop.site.address ? ` — ${pop.site.address}` : ""}` : "";
  text("card-number", pop.caller.withheld ? "Numéro masqué" : phone(pop.caller.number));
  text("card-calls-today", pop.caller.calls_today_label);
  text("card-menu", (pop.ivr_answers || []).map((a) => `${a.label} (touche ${a.digit})`).join(", ") || "Aucun menu");
  text("card-queue", pop.queue ? pop.queue.label : (pop.reason === "rappel demandé" ? "Rappel d'un patient" : ""));
  const platform = $("card-platform");
  platform.replaceChildren();
  if (card.booking_link) {
    platform.append(el("a", {
      href: card.booking_link, target: "_blank", rel: "noopener noreferrer", id: "card-booking-link",
      class: "booking", text: `Ouvrir l'agenda ${card.platform_label || ""}`.trim(),
    }));
  } else {
    platform.textContent = card.platform_label || "Pas d'agenda en ligne";
  }
  text("card-instructions", card.instructions);
  renderTypes(card.consultation_types || []);
  renderReserved(card.reserved_slots || []);
  tick();
}

function renderTypes(types) {
  const body = $("card-types");
  body.replaceChildren();
  for (const c of types) {
    const row = el("tr", { class: c.bookable_directly ? "direct" : "filter" });
    cell(row, c.notes ? `${c.label} — ${c.notes}` : c.label);
    cell(row, c.duration_label);
    cell(row, (c.practitioners || []).join(", "));
    cell(row, c.patients_label);
    cell(row, c.booking_label);
    body.append(row);
  }
  if (!body.children.length) {
    body.append(el("tr", {}, el("td", { colspan: "5", text: "Aucun type de consultation renseigné" })));
  }
}

function renderReserved(slots) {
  const list = $("card-reserved");
  list.replaceChildren();
  for (const r of slots) {
    const who = [r.practitioner, r.site].filter(Boolean).join(", ");
    list.append(el("li", { text: `${r.days_label} ${r.hours_label} : ${r.purpose}${who ? ` (${who})` : ""}` }));
  }
  if (!list.children.length) list.append(el("li", { text: "Aucun créneau réservé" }));
}

function setStatus(status) {
  shown.status = status;
  const pop = shown.pop;
  const label = STATUS[status];
  $("card-status").textContent = status === "ringing" && pop.tier_label ? `${label} — ${pop.tier_label}` : label;
  $("card").dataset.status = status;
  $("card-close").hidden = status !== "ended" && status !== "taken";
}

// She answered (at: ISO): « En communication », the timer starts, the wait stops.
export function markAnswered(at) {
  if (!shown || shown.status !== "ringing") return;
  shown.answeredAt = at ? new Date(at).getTime() : Date.now();
  setStatus("in_call");
  tick();
}

// The call is over (at: ISO): « Appel terminé », kept on screen until the next call or she closes it.
export function markEnded(at) {
  if (!shown || shown.status === "ended") return;
  shown.endedAt = at ? new Date(at).getTime() : Date.now();
  setStatus("ended");
  tick();
}

// Another secretary took it, or it went back in line.
export function markTaken() {
  if (!shown) return;
  setStatus("taken");
  shown.endedAt = Date.now();
  tick();
}

export function tick() {
  if (!shown) return;
  const { pop, answeredAt, endedAt } = shown;
  const now = Date.now();
  if (pop.queued_at) {
    const from = new Date(pop.queued_at).getTime();
    const until = answeredAt || endedAt || now;
    $("card-waited").textContent = duration((until - from) / 1000);
  } else {
    $("card-waited").textContent = "—";
  }
  const timer = $("card-timer");
  if (answeredAt) {
    timer.textContent = clock(((endedAt || now) - answeredAt) / 1000);
    timer.title = endedAt ? "Durée de la communication" : "Depuis la réponse";
  } else {
    timer.textContent = shown.status === "ended" ? "· raccroché avant réponse" : "";
    timer.title = "";
  }
}

export function clearCard() {
  shown = null;
  $("card").hidden = true;
  $("idle").hidden = false;
}
