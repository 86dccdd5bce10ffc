// Small French formatting helpers shared by the console's modules.
export const $ = (id) => document.getElementById(id);

const two = (n) => String(n).padStart(2, "0");

// 75 -> "1 min 15 s"; 3725 -> "1 h 02 min 05 s"
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h} h ${two(m)} min ${two(sec)} s`;
  if (m) return `${m} min ${two(sec)} s`;
  return `${sec} s`;
}

// A stopwatch: 75 -> "01:15"
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

// An ISO time as the secretary reads it: "14h05".
export function hour(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${two(d.getHours())}h${two(d.getMinutes())}`;
}

export function since(iso) {
  return iso ? (Date.now() - new Date(iso).getTime()) / 1000 : 0;
}

// Local midnight of today, as an ISO instant for the API's `since`.
export function todayMidnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}

// +33612345678 -> "06 12 34 56 78"; other numbers as given.
export function phone(number) {
  if (!number) return "Numéro masqué";
  const m = /^\+33([1-9])(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(number);
  return m ? `0${m[1]} ${m[2]} ${m[3]} ${m[4]} ${m[5]}` : number;
}

export const OUTCOMES = {
  answered: "Répondu",
  abandoned: "Raccroché avant réponse",
  voicemail: "Message laissé",
  overflow: "Débordement",
  callback_requested: "Rappel demandé",
  announced: "Message d'information",
  failed: "Échec technique",
  rejected: "Refusé",
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.dataset[key.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Calls `run` at most once at a time, and once more after it if asked meanwhile: the refreshes
// asked by a burst of events become one or two requests.
export function coalesced(run, delayMs = 250) {
  let timer = null, running = false, again = false;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await run();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(fire, delayMs);
  };
  return schedule;
}

// A confirmation shown for a few seconds where she acted.
export function flash(box, message, ms = 8000) {
  box.textContent = message;
  box.className = "notice ok";
  box.hidden = false;
  clearTimeout(box.flashTimer);
  box.flashTimer = setTimeout(() => { box.hidden = true; }, ms);
}
