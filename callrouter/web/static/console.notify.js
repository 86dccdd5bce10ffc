// A call offered while the console's tab is in the background: a desktop notification (the
// permission is asked from a button, never on load) and a short two-tone chime made with WebAudio
// (no sound file). The page keeps its own record of what it did on <body>: data-notified (the
// call id), data-notification ("shown", "failed", "denied"...) and data-chimes (how many chimes).
import { $ } from "/static/console.format.js";

let audio = null;

function record(key, value) {
  document.body.dataset[key] = value;
}

export function setup() {
  render();
  $("notify-enable").addEventListener("click", async () => {
    if (!("Notification" in window)) return;
    await Notification.requestPermission();
    render();
    unlockAudio();
  });
  // Browsers start sound only after a gesture of hers: the first click or key unlocks it.
  const unlock = () => unlockAudio();
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
}

function render() {
  const supported = "Notification" in window;
  const permission = supported ? Notification.permission : "unsupported";
  $("notify-enable").hidden = !supported || permission !== "default";
  const state = $("notify-state");
  state.hidden = permission === "default";
  state.textContent = {
    granted: "Notifications activées",
    denied: "Notifications bloquées par le navigateur",
    unsupported: "Notifications non disponibles",
  }[permission] || "";
  state.className = `notify-state notify-${permission}`;
  record("notificationPermission", permission);
}

function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!audio) audio = new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

function chime() {
  const ctx = unlockAudio();
  if (!ctx) return;
  const start = ctx.currentTime + 0.02;
  [[880, 0], [660, 0.22]].forEach(([freq, at]) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start + at);
    gain.gain.exponentialRampToValueAtTime(0.25, start + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + at);
    osc.stop(start + at + 0.22);
  });
  record("chimes", String(Number(document.body.dataset.chimes || 0) + 1));
}

// A call is offered (the screen-pop): told only when she is not looking at the console.
export function offered(pop) {
  if (document.visibilityState !== "hidden") return;
  chime();
  record("notified", pop.call_id);
  if (!("Notification" in window) || Notification.permission !== "granted") {
    record("notification", "Notification" in window ? Notification.permission : "unsupported");
    return;
  }
  const reason = (pop.ivr_answers || []).map((a) => a.label).join(", ") || (pop.queue && pop.queue.label) || "";
  const title = pop.tier_label ? `Appel ${pop.tier_label.toLowerCase()} — ${pop.practice_name}` : `Appel entrant — ${pop.practice_name}`;
  try {
    const n = new Notification(title, {
      body: [reason && `Motif : ${reason}`, pop.caller && pop.caller.calls_today_label].filter(Boolean).join(" · "),
      tag: `call-${pop.call_id}`,
      requireInteraction: true,
      lang: "fr",
    });
    record("notification", "created");
    n.addEventListener("show", () => record("notification", "shown"));
    n.addEventListener("error", () => record("notification", "failed"));
    n.addEventListener("click", () => {
      window.focus();
      n.close();
    });
  } catch (e) {
    record("notification", "failed");
  }
}
