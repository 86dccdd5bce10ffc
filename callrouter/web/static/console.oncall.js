// Who is on call now for the card's practice, its escalation tiers and the form starting one for
// the call on the card (POST /api/calls/{call_id}/escalate). Names only: no practitioner's number
// ever reaches this page.
import { api } from "/static/api.js";
import { $, el, hour } from "/static/console.format.js";
import { guarded } from "/static/console.guard.js";

let callId = null;
let chosen = null; // the tier being escalated
let loaded = null; // the practice whose on-call is shown

export async function loadOnCall(practice, call) {
  callId = call;
  closeForm();
  $("escalate-result").hidden = true;
  if (loaded === practice && $("tiers").children.length) return;
  loaded = practice;
  $("oncall-now").textContent = "…";
  $("oncall-backup").textContent = "";
  $("tiers").replaceChildren();
  let info;
  try {
    info = await api("GET", `/api/practices/${encodeURIComponent(practice)}/on-call`);
  } catch (e) {
    loaded = null;
    $("oncall-now").textContent = `Garde indisponible : ${e.message}`;
    return;
  }
  render(info);
}

function render(info) {
  const now = $("oncall-now");
  now.replaceChildren();
  if (!info.rota) {
    now.textContent = "Pas de planning de garde pour ce cabinet.";
  } else if (info.on_call && info.on_call.name) {
    now.append(el("strong", { id: "oncall-name", text: info.on_call.name }));
    if (info.on_call.role) now.append(` — ${info.on_call.role}`);
    const until = info.on_call.until ? `, jusqu'à ${hour(info.on_call.until)}` : "";
    now.append(el("span", { class: "muted", text: ` (${info.on_call.rule_label}${until})` }));
  } else {
    now.append(el("strong", { class: "warn", text: "Personne de garde à cette heure" }));
  }
  $("oncall-backup").textContent = info.backup ? `Remplaçant : ${info.backup.name}` : "";
  const list = $("tiers");
  list.replaceChildren();
  for (const tier of info.tiers) {
    const steps = tier.steps.map((s) => {
      const who = s.name || s.target_label;
      return s.reachable ? `${s.channel_label} → ${who}` : `${s.channel_label} → ${who} (${s.note})`;
    });
    const button = el("button", { type: "button", class: tier.tier === "vital" ? "danger" : "tier-button", "data-tier": tier.tier,
                                  text: tier.label });
    button.addEventListener("click", () => openForm(tier));
    list.append(el("li", { class: "tier" }, button,
      el("span", { class: "tier-steps", text: steps.join(" · ") || "aucune étape" })));
  }
  if (!info.tiers.length) list.append(el("li", { class: "muted", text: "Aucun niveau d'escalade défini pour ce cabinet." }));
}

function openForm(tier) {
  chosen = tier;
  $("escalate-title").textContent = `${tier.label} : ${tier.names.length ? `prévient ${tier.names.join(", puis ")}` : "personne à prévenir pour l'instant"}`;
  const withheld = $("card-number").textContent === "Numéro masqué";
  $("escalate-number-row").hidden = !withheld;
  $("escalate-form").hidden = false;
  $("escalate-result").hidden = true;
  $("escalate-note").focus();
}

function closeForm() {
  chosen = null;
  $("escalate-form").hidden = true;
  $("escalate-form").reset();
}

// The E shortcut: the first tier's button, to pick one with Tab and Enter.
export function focusTiers() {
  const first = $("tiers").querySelector("button");
  if (first) first.focus();
}

export function setup() {
  $("escalate-cancel").addEventListener("click", closeForm);
  $("escalate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!chosen || !callId) return;
    const body = { tier: chosen.tier };
    const note = $("escalate-note").value.trim();
    if (note) body.note = note;
    const number = $("escalate-number").value.trim();
    if (!$("escalate-number-row").hidden && number) body.callback_number = number;
    const label = chosen.label;
    $("escalate-send").disabled = true;
    guarded(async () => {
      try {
        const { escalation } = await api("POST", `/api/calls/${encodeURIComponent(callId)}/escalate`, body);
        closeForm();
        const result = $("escalate-result");
        result.textContent = `Escalade ${escalation.reference} déclenchée (${label}) à ${hour(escalation.started_at)}.`;
        result.className = "notice ok";
        result.hidden = false;
      } finally {
        $("escalate-send").disabled = false;
      }
    }, "escalate-result");
  });
}
