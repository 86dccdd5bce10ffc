// The call card: the screen-pop object (the same as on MQTT) drawn as the secretary reads it.
const $ = (id) => document.getElementById(id);

function text(id, value) {
  $(id).textContent = value || "—";
}

function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value || "—";
  row.append(td);
}

export function renderCard(pop) {
  const card = pop.card || {};
  $("idle").hidden = true;
  $("card").hidden = false;
  $("card").dataset.callId = pop.call_id;
  $("card").dataset.shownAt = String(Date.now());
  markCall(pop.tier_label ? `Appel entrant — ${pop.tier_label}` : "Appel entrant");
  text("card-practice", pop.practice_name || pop.practice);
  $("card-site").hidden = !pop.site;
  $("card-site").textContent = pop.site ? `${pop.site.name}${pop.site.address ? ` — ${pop.site.address}` : ""}` : "";
  text("card-number", pop.caller.withheld ? "Numéro masqué" : pop.caller.number);
  text("card-calls-today", pop.caller.calls_today_label);
  text("card-menu", (pop.ivr_answers || []).map((a) => `${a.label} (touche ${a.digit})`).join(", ") || "Aucun menu");
  text("card-queue", pop.queue ? pop.queue.label : "");
  text("card-waited", "");
  const platform = $("card-platform");
  platform.replaceChildren();
  if (card.booking_link) {
    const link = document.createElement("a");
    link.href = card.booking_link;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.id = "card-booking-link";
    link.className = "booking";
    link.textContent = `Ouvrir l'agenda ${card.platform_label || ""}`.trim();
    platform.append(link);
  } else {
    platform.textContent = card.platform_label || "Pas d'agenda en ligne";
  }
  text("card-instructions", card.instructions);
  const types = $("card-types");
  types.replaceChildren();
  for (const c of card.consultation_types || []) {
    const row = document.createElement("tr");
    cell(row, c.notes ? `${c.label} — ${c.notes}` : c.label);
    cell(row, c.duration_label);
    cell(row, (c.practitioners || []).join(", "));
    cell(row, c.patients_label);
    cell(row, c.booking_label);
    row.className = c.bookable_directly ? "direct" : "filter";
    types.append(row);
  }
  if (!types.children.length) {
    const row = document.createElement("tr");
    cell(row, "Aucun type de consultation renseigné");
    row.firstChild.colSpan = 5;
    types.append(row);
  }
  const reserved = $("card-reserved");
  reserved.replaceChildren();
  for (const r of card.reserved_slots || []) {
    const li = document.createElement("li");
    const who = [r.practitioner, r.site].filter(Boolean).join(", ");
    li.textContent = `${r.days_label} ${r.hours_label} : ${r.purpose}${who ? ` (${who})` : ""}`;
    reserved.append(li);
  }
  if (!reserved.children.length) {
    const li = document.createElement("li");
    li.textContent = "Aucun créneau réservé";
    reserved.append(li);
  }
}

export function markCall(status) {
  $("card-status").textContent = status;
}

export function clearCard() {
  $("card").hidden = true;
  $("idle").hidden = false;
}
