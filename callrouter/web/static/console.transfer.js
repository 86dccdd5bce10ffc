// « Transférer » : the call she is on handed to a colleague who covers its practice and is free
// (GET /api/calls/{id}/colleagues, POST /api/calls/{id}/transfer). The outcome comes as the call's
// events: « transferred » (the colleague took it) or « transfer_failed » (back with her).
import { api } from "/static/api.js";
import { $ } from "/static/console.format.js";

let callId = null; // the call she is on, once answered
let pending = null; // { callId, name } while the colleague's phone rings

export function setup() {
  $("transfer-open").addEventListener("click", () => open($("transfer-to"), $("transfer-form")));
  $("transfer-cancel").addEventListener("click", () => {
    $("transfer-form").hidden = true;
    $("transfer-open").hidden = !callId;
  });
  $("transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("transfer-to"));
  });
}

// The call card shows « Transférer » while she is on call `id` (null: on none).
export function onCall(id) {
  callId = id;
  $("transfer-open").hidden = !id;
  if (!id) $("transfer-form").hidden = true;
}

export function current() {
  return callId;
}

// The colleagues who could take the call, into `select` (the card's list or the phone panel's).
export async function open(select, form) {
  if (!callId) return;
  say("", null);
  let colleagues = [];
  try {
    ({ colleagues } = await api("GET", `/api/calls/${callId}/colleagues`));
  } catch (e) {
    say(e.message, "ko");
    return;
  }
  select.replaceChildren();
  if (!colleagues.length) {
    say("Aucune collègue disponible pour ce cabinet en ce moment.", "ko");
    if (form) form.hidden = true;
    return;
  }
  for (const c of colleagues) {
    const option = document.createElement("option");
    option.value = c.username || c.id;
    option.textContent = c.display_name || c.id;
    select.append(option);
  }
  if (form) form.hidden = false;
  // The card's chooser replaces its « Transférer » button while it is open (one button, not two).
  if (form === $("transfer-form")) $("transfer-open").hidden = true;
}

export async function send(select) {
  const to = select.value;
  const option = select.selectedOptions[0];
  if (!callId || !to) return;
  const name = option ? option.textContent : to;
  try {
    await api("POST", `/api/calls/${callId}/transfer`, { to });
  } catch (e) {
    say(e.message, "ko");
    return;
  }
  pending = { callId, name };
  $("transfer-form").hidden = true;
  $("transfer-open").hidden = true;
  say(`Transfert vers ${name}… Le patient entend la musique d'attente.`, "info");
}

// A call event: the transfer she asked ended one way or the other.
export function onCallEvent(payload) {
  if (!pending || payload.call_id !== pending.callId) return;
  if (payload.state === "transferred") {
    say(`Appel transféré à ${pending.name}.`, "ok");
    pending = null;
    onCall(null);
  } else if (payload.state === "transfer_failed") {
    say(`${pending.name} n'a pas répondu : le patient est de nouveau en ligne avec vous.`, "ko");
    pending = null;
    onCall(callId);
  } else if (payload.state === "ended") {
    pending = null;
  }
}

function say(text, kind) {
  const el = $("transfer-result");
  el.textContent = text;
  el.className = `notice ${kind || ""}`;
  el.hidden = !text;
}
