// The phone's media around JsSIP: the ring (WebAudio, no sound file: browsers start sound only
// after a gesture, so the sign-in's click, or her first click here, unlocks it), the choice of
// microphone and speaker (kept in this browser), and the call-quality figures read from the
// peer connection's statistics every two seconds.
import { $ } from "/static/console.format.js";

const MIC_KEY = "callrouter.phone.mic";
const SPEAKER_KEY = "callrouter.phone.speaker";
let audio = null;
let ringTimer = null;

function context() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!audio) audio = new Context();
  return audio;
}

// True once sound may play; otherwise a button asks for the one click browsers require.
export function setupRing() {
  const ctx = context();
  const unlocked = () => {
    document.body.dataset.ringUnlocked = String(!!ctx && ctx.state === "running");
    $("webphone-unlock").hidden = !ctx || ctx.state === "running";
  };
  if (!ctx) return;
  ctx.addEventListener("statechange", unlocked);
  const unlock = () => ctx.resume().then(unlocked, unlocked);
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
  $("webphone-unlock").addEventListener("click", unlock);
  unlock();
  unlocked();
}

// The French ring: 440 Hz, 1.5 s on, 3.5 s off, until stopRing().
export function startRing() {
  stopRing();
  const ctx = context();
  const ring = () => {
    if (!ctx || ctx.state !== "running") return;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const t = ctx.currentTime + 0.02;
    osc.frequency.value = 440;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.3, t + 0.05);
    gain.gain.setValueAtTime(0.3, t + 1.45);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 1.5);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    osc.stop(t + 1.55);
    document.body.dataset.rings = String(Number(document.body.dataset.rings || 0) + 1);
  };
  ring();
  ringTimer = setInterval(ring, 5000);
}

export function stopRing() {
  if (ringTimer) clearInterval(ringTimer);
  ringTimer = null;
}

export function chosenMic() {
  return localStorage.getItem(MIC_KEY) || "";
}

export function audioConstraints() {
  const mic = chosenMic();
  return { audio: mic ? { deviceId: { exact: mic } } : true, video: false };
}

// The selects filled from the devices (their names appear once the microphone was allowed).
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, key, fallback) => {
    select.replaceChildren();
    const standard = document.createElement("option");
    standard.value = "";
    standard.textContent = fallback;
    select.append(standard);
    devices.filter((d) => d.kind === kind && d.deviceId && d.deviceId !== "default").forEach((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `${fallback} ${i + 1}`;
      select.append(option);
    });
    select.value = localStorage.getItem(key) || "";
    if (select.value !== (localStorage.getItem(key) || "")) select.value = "";
  };
  fill($("webphone-mic"), "audioinput", MIC_KEY, "Micro par défaut");
  fill($("webphone-speaker"), "audiooutput", SPEAKER_KEY, "Haut-parleur par défaut");
}

export function setupDevices(onMicChange) {
  $("webphone-settings-open").addEventListener("click", () => {
    const panel = $("webphone-settings");
    panel.hidden = !panel.hidden;
    $("webphone-settings-open").setAttribute("aria-expanded", String(!panel.hidden));
    listDevices();
  });
  $("webphone-mic").addEventListener("change", (e) => {
    localStorage.setItem(MIC_KEY, e.target.value);
    onMicChange();
  });
  $("webphone-speaker").addEventListener("change", (e) => {
    localStorage.setItem(SPEAKER_KEY, e.target.value);
    applySpeaker();
  });
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", listDevices);
}

export function applySpeaker() {
  const el = $("webphone-audio");
  const id = localStorage.getItem(SPEAKER_KEY) || "";
  if (typeof el.setSinkId === "function") el.setSinkId(id).catch(() => {});
}

// Quality from getStats(): loss, jitter and round trip; the raw counters on <body> for checks.
export async function readQuality(pc) {
  const stats = await pc.getStats();
  let inbound = null, outbound = null, rtt = null;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") inbound = s;
    if (s.type === "outbound-rtp" && s.kind === "audio") outbound = s;
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
    if (s.type === "remote-inbound-rtp" && s.roundTripTime !== undefined && rtt === null) rtt = s.roundTripTime;
  });
  if (!inbound) return null;
  const received = inbound.packetsReceived || 0, lost = Math.max(0, inbound.packetsLost || 0);
  const loss = received + lost ? (100 * lost) / (received + lost) : 0;
  const jitter = (inbound.jitter || 0) * 1000;
  const grade = loss > 5 || jitter > 60 || (rtt || 0) > 0.4 ? "poor" : loss > 1 || jitter > 30 || (rtt || 0) > 0.25 ? "fair" : "good";
  Object.assign(document.body.dataset, {
    phoneInboundPackets: String(received),
    phoneInboundLevel: String(inbound.audioLevel || 0),
    phoneInboundEnergy: String(inbound.totalAudioEnergy || 0),
    phoneOutboundPackets: String(outbound ? outbound.packetsSent || 0 : 0),
  });
  return { grade, loss, jitter, rtt };
}

export function showQuality(q) {
  const el = $("webphone-quality");
  el.hidden = !q;
  if (!q) return;
  const label = { good: "bonne", fair: "moyenne", poor: "mauvaise" }[q.grade];
  const rtt = q.rtt === null ? "" : `, aller-retour ${Math.round(q.rtt * 1000)} ms`;
  el.textContent = `Qualité ${label} (perte ${q.loss.toFixed(1).replace(".", ",")} %, gigue ${Math.round(q.jitter)} ms${rtt})`;
  el.className = `webphone-quality ${q.grade}`;
}
