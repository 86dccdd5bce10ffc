// The tiles: one per practice (its queues inside) and one per shared line; the service level drawn
// as a gauge against the target; red when the practice is open and nobody is logged in.
import { $, el, svg, clockDuration, percent, plural } from "/static/wallboard.util.js";

const STATUS = {
  open: ["Ouvert", "status-open"],
  closed: ["Fermé", "status-closed"],
  holiday: ["Jour férié", "status-closed"],
  closure: ["Fermeture exceptionnelle", "status-closed"],
};
export const ALARM_TEXT = "Cabinet ouvert, personne n'est connecté";

// The service level as a half-circle gauge: the arc filled to the rate, a tick at the target.
export function gauge(sl) {
  const rate = sl.rate;
  const level = rate === null ? "none" : rate >= sl.target ? "good" : rate >= sl.target - 0.1 ? "near" : "bad";
  const arc = "M 10 60 A 50 50 0 0 1 110 60";
  const angle = Math.PI * (1 - sl.target);
  const [cx, cy, r1, r2] = [60, 60, 42, 58];
  const tick = svg("line", {
    x1: cx + r1 * Math.cos(angle), y1: cy - r1 * Math.sin(angle),
    x2: cx + r2 * Math.cos(angle), y2: cy - r2 * Math.sin(angle), class: "gauge-target",
  });
  const fill = rate === null ? null : svg("path", {
    d: arc, pathLength: 100, class: `gauge-fill gauge-${level}`,
    "stroke-dasharray": `${Math.max(0.01, rate * 100)} 100`,
  });
  const figure = svg("svg", { viewBox: "0 0 120 72", class: "gauge", role: "img",
    "aria-label": `Niveau de service ${percent(rate)}, objectif ${percent(sl.target)}` },
  svg("path", { d: arc, class: "gauge-track" }), fill, tick,
  svg("text", { x: 60, y: 56, class: `gauge-value gauge-${level}`, "text-anchor": "middle", text: percent(rate) }));
  const caption = rate === null
    ? "aucun appel à compter aujourd'hui"
    : `${sl.numerator} / ${sl.denominator} en moins de ${sl.threshold_s} s`;
  return el("div", { class: "sl", "data-rate": rate === null ? "none" : rate.toFixed(3) },
    figure,
    el("p", { class: "sl-label" }, "Niveau de service", el("span", { class: "sl-target", text: ` objectif ${percent(sl.target)}` })),
    el("p", { class: "sl-caption", text: caption }));
}

function metric(value, label, cls, extra = {}) {
  return el("div", { class: `metric ${cls || ""}` },
    el("span", { class: "value", text: value, ...extra }), el("span", { class: "label", text: label }));
}

function waitMetric(entry) {
  return metric(entry.waiting ? clockDuration(entry.longest_wait_s) : "—", "attente max", "wait",
    { "data-wait": entry.waiting ? entry.longest_wait_s : "", "data-tick": entry.waiting ? "1" : "" });
}

function today(t) {
  return el("dl", { class: "today" },
    el("div", {}, el("dt", { text: "Décrochés" }), el("dd", { class: "answered", text: t.answered })),
    el("div", {}, el("dt", { text: "Abandons" }), el("dd", { class: "abandoned", text: t.abandoned })),
    el("div", {}, el("dt", { text: "Débordés" }), el("dd", { class: "overflowed", text: t.overflowed })),
    el("div", {}, el("dt", { text: "Reçus" }), el("dd", { class: "received", text: t.received })));
}

function people(p) {
  const total = p.covering.length;
  if (!total) return el("p", { class: "people none", text: "Aucune secrétaire ne couvre cette file" });
  return el("p", { class: `people ${p.logged_in ? "" : "nobody"}`, "data-logged-in": p.logged_in },
    el("strong", { text: `${p.logged_in} / ${total}` }), ` connectée${p.logged_in > 1 ? "s" : ""}`,
    el("span", { class: "sep", text: " · " }),
    el("strong", { text: String(p.available) }), ` disponible${p.available > 1 ? "s" : ""}`);
}

function queueRow(q) {
  return el("li", { class: `queue ${q.waiting ? "busy" : ""}`, "data-queue": q.id, "data-waiting": q.waiting },
    el("span", { class: "queue-label", text: q.line ? `${q.label} (partagée)` : q.label }),
    el("span", { class: "queue-waiting", text: q.waiting ? plural(q.waiting, "en attente", "en attente") : "aucune attente" }),
    el("span", { class: "queue-wait", "data-wait": q.waiting ? q.longest_wait_s : "", "data-tick": q.waiting ? "1" : "",
      text: q.waiting ? clockDuration(q.longest_wait_s) : "" }),
    el("span", { class: "queue-sl", title: "Niveau de service du jour", text: percent(q.today.service_level.rate) }));
}

function practiceTile(p) {
  const [label, css] = STATUS[p.status] || [p.status, "status-closed"];
  const tile = el("article", {
    class: `tile ${p.alarm ? "alarm" : ""} ${p.open_now ? "" : "closed"}`,
    "data-practice": p.id, "data-alarm": p.alarm ? "1" : "0", "data-waiting": p.waiting,
  },
  el("header", { class: "tile-head" }, el("h3", { text: p.name }), el("span", { class: `status ${css}`, text: label })),
  p.alarm ? el("p", { class: "alarm-text", text: ALARM_TEXT }) : null,
  el("div", { class: "metrics" },
    metric(String(p.waiting), p.waiting > 1 ? "appels en attente" : "appel en attente", `waiting ${p.waiting ? "hot" : ""}`),
    waitMetric(p), gauge(p.today.service_level)),
  today(p.today),
  people(p.secretaries),
  p.callbacks_waiting ? el("p", { class: "callbacks", text: plural(p.callbacks_waiting, "rappel à faire", "rappels à faire") }) : null,
  p.queues.length > 1 ? el("ul", { class: "queues" }, p.queues.map(queueRow)) : null);
  return tile;
}

function lineTile(l) {
  const names = [...new Set(l.queues.map((q) => q.practice_name))].join(", ");
  return el("article", { class: `tile line ${l.secretaries.logged_in ? "" : "quiet"}`, "data-line": l.id, "data-waiting": l.waiting },
    el("header", { class: "tile-head" }, el("h3", { text: `Ligne partagée « ${l.name} »` }),
      el("span", { class: "status status-line", text: "Ligne" })),
    el("p", { class: "line-practices", text: names }),
    el("div", { class: "metrics" },
      metric(String(l.waiting), l.waiting > 1 ? "appels en attente" : "appel en attente", `waiting ${l.waiting ? "hot" : ""}`),
      waitMetric(l), gauge(l.today.service_level)),
    today(l.today),
    people(l.secretaries));
}

export function renderTiles(board) {
  const tiles = $("tiles");
  const order = [...board.practices].sort((a, b) => (b.alarm - a.alarm) || (b.open_now - a.open_now) || a.name.localeCompare(b.name, "fr"));
  tiles.replaceChildren(...order.map(practiceTile), ...board.lines.map(lineTile));
  if (!tiles.children.length) tiles.append(el("p", { class: "empty", text: "Aucun cabinet n'est chargé." }));
}

// Every second: the longest waits go on from their value when the board was read.
export function tickTiles(elapsed) {
  for (const node of document.querySelectorAll("[data-tick='1']")) {
    node.textContent = clockDuration(Number(node.dataset.wait) + elapsed);
  }
}
