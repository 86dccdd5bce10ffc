// Open escalations with their steps as they happen; an exhausted one blinks red until a
// supervisor takes it in hand (POST /api/escalations/{id}/take: every wallboard stops at once).
import { $, el, hourMinute, shortDuration } from "/static/wallboard.util.js";

const CHANNELS = { sms: "SMS", call: "Appel", email: "E-mail", voice: "Appel" };
const STEP_STATES = {
  pending: "en attente", sending: "envoi en cours", sent: "envoyé", delivered: "reçu", failed: "échec",
  skipped: "non envoyé", unknown: "incertain",
};
const CALL_OUTCOMES = {
  acknowledged: "a accusé réception", no_key_pressed: "décroché sans valider", no_answer: "pas de réponse",
  busy: "occupé", failed: "échec", connected: "mis en relation", cancelled: "annulé",
};

function step(s) {
  const what = s.outcome && CALL_OUTCOMES[s.outcome] ? CALL_OUTCOMES[s.outcome] : STEP_STATES[s.state] || s.state;
  return el("li", { class: `step step-${s.state}`, "data-state": s.state },
    el("span", { class: "step-channel", text: CHANNELS[s.channel] || s.channel }),
    el("span", { class: "step-to", text: s.practitioner_name || "—" }),
    el("span", { class: "step-state", text: what }),
    el("time", { datetime: s.sent_at || s.created_at, text: hourMinute(s.sent_at || s.created_at) }));
}

function headline(c) {
  if (c.needs_attention) return ["Épuisée — personne n'a accusé réception : trouvez un praticien", "exhausted"];
  if (c.outcome === "exhausted" && c.taken_by) return [`Prise en charge par ${c.taken_by}`, "taken"];
  if (c.acknowledged_at) return [`Acquittée par ${c.acknowledged_by_name || c.acknowledged_by}`, "acknowledged"];
  return ["En cours", "active"];
}

function chain(c, take) {
  const [state, css] = headline(c);
  const started = Date.parse(c.started_at);
  return el("article", { class: `chain chain-${css} ${c.needs_attention ? "attention" : ""}`, "data-escalation": c.id,
    "data-attention": c.needs_attention ? "1" : "0" },
  el("header", { class: "chain-head" },
    el("strong", { text: c.practice_name }),
    el("span", { class: "tier", text: c.tier }),
    el("span", { class: "ref", text: c.reference })),
  el("p", { class: "chain-state", text: state }),
  el("p", { class: "chain-time muted", text: `Démarrée à ${hourMinute(c.started_at)}, il y a ${shortDuration((Date.now() - started) / 1000)}`
    + (c.triggered_by ? ` — par ${c.triggered_by.replace(/^user:/, "")}` : " — depuis le menu vocal") }),
  c.steps.length ? el("ol", { class: "steps" }, c.steps.map(step)) : el("p", { class: "muted", text: "Aucune étape envoyée pour l'instant." }),
  c.declined_by_names.length ? el("p", { class: "declined", text: `A décliné : ${c.declined_by_names.join(", ")}` }) : null,
  c.needs_attention ? el("button", { class: "take danger", onclick: (e) => take(c, e.currentTarget), text: "Prendre en charge" }) : null);
}

export function renderChains(chains, take) {
  const box = $("escalations");
  const order = [...chains].sort((a, b) => (b.needs_attention - a.needs_attention) || a.started_at.localeCompare(b.started_at));
  box.replaceChildren(...order.map((c) => chain(c, take)));
  if (!order.length) box.append(el("p", { class: "empty", text: "Aucune escalade en cours." }));
  const attention = chains.filter((c) => c.needs_attention).length;
  $("escalations-summary").textContent = attention ? `${attention} à prendre en charge` : chains.length ? `${chains.length} en cours` : "";
  $("escalations-summary").classList.toggle("hot", attention > 0);
}
