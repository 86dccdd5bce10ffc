// Small helpers of the wallboard: elements built node by node (never from HTML text), durations and times in French.
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("data-")) node.dataset[camel(name.slice(5))] = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function camel(name) {
  return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

const two = (n) => String(n).padStart(2, "0");

// 75 -> "01:15"; 3725 -> "1 h 02:05"
export function clockDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h ? `${h} h ` : ""}${two(m)}:${two(sec)}`;
}

// 42 -> "42 s"; 300 -> "5 min"; 5400 -> "1 h 30"
export function shortDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))}`;
}

export function hourMinute(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}

export function percent(rate) {
  return rate === null || rate === undefined ? "-" : `${Math.round(rate * 100)} %`;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

export function capitalise(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

// At most one run per `gap` ms, whatever the number of requests; never two at once.
export function coalesced(run, gap = 1000) {
  let last = 0;
  let timer = null;
  let running = false;
  let again = false;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await run();
    } finally {
      running = false;
      if (again) {
        again = false;
        request();
      }
    }
  };
  function request() {
    if (timer) return;
    timer = setTimeout(fire, Math.max(0, last + gap - Date.now()));
  }
  return request;
}
