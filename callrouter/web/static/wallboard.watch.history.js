// The « Renvois » view: per watched practice, its recent forwarding watches (GET
// /api/practices/{practice}/watch?days=14) in the practice's local time, as a chart of the round-trip
// times with the failures marked, then a table of what each test saw. Drawn as inline SVG, node by
// node (no library, nothing from elsewhere).
import { api } from "/static/api.js";
import { phone } from "/static/console.format.js";
import { $, el, svg } from "/static/wallboard.util.js";

export const DAYS = 14;
const W = 1100, H = 200, LEFT = 46, RIGHT = 14, TOP = 26, BOTTOM = 30; // the chart's frame, in SVG units
const DAY_MS = 86400000;
const FORWARDING = {
  always: "renvoi permanent",
  closed: "renvoi hors des heures d'ouverture",
  no_answer: "renvoi sur non-réponse",
};
const STATES = {
  passed: ["Renvoi vérifié", "ok"],
  failed: ["En échec", "ko"],
  interrupted: ["Interrompu", "off"],
  calling: ["En cours", "off"],
};

const formats = new Map(); // time zone -> its formatters
function fmt(tz) {
  if (!formats.has(tz)) {
    formats.set(tz, {
      day: new Intl.DateTimeFormat("fr-FR", { timeZone: tz, weekday: "short", day: "numeric", month: "short" }),
      tick: new Intl.DateTimeFormat("fr-FR", { timeZone: tz, weekday: "short", day: "numeric" }),
      time: new Intl.DateTimeFormat("fr-FR", { timeZone: tz, hour: "2-digit", minute: "2-digit" }),
      parts: new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }),
    });
  }
  return formats.get(tz);
}

function seconds(ms) {
  return `${(ms / 1000).toLocaleString("fr-FR", { minimumFractionDigits: 1, maximumFractionDigits: 1 })} s`;
}

function when(run) {
  return Date.parse(run.started_at);
}

// The instant of the local midnight (in `tz`) that begins the day holding `ms`.
function localMidnight(ms, tz) {
  const p = Object.fromEntries(fmt(tz).parts.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return ms - ((Number(p.hour) * 60 + Number(p.minute)) * 60 + Number(p.second)) * 1000 - (ms % 1000);
}

function seen(run) {
  if (run.state === "interrupted") return "interrompu avant son verdict (aucune alerte)";
  if (!run.attempts.length) return "—";
  return run.attempts.map((a) => {
    if (!a.outcome) return `essai ${a.n} : en cours`;
    let text = `essai ${a.n} : ${a.outcome_label || a.outcome}`;
    if (a.sip_code) text += ` (SIP ${a.sip_code})`;
    if (a.rang && a.outcome !== "unanswered") text += ", a sonné";
    if (a.outcome === "passed" && a.name_kept !== null) text += a.name_kept ? ", nom conservé" : ", nom non transmis";
    return text;
  }).join(" ; ");
}

function label(run) {
  const [text, css] = STATES[run.state] || [run.state, "off"];
  const extra = run.state === "failed" && run.acknowledged_by ? ` — pris en compte par ${run.acknowledged_by}` : "";
  return el("td", { class: `wh-state wh-${css}` }, text, extra && el("span", { class: "muted", text: extra }));
}

function row(run, tz) {
  const at = new Date(when(run));
  return el("tr", { "data-watch-history-run": run.id, class: `wh-row-${run.state}` },
    el("td", { class: "wh-date", text: fmt(tz).day.format(at) }),
    el("td", { class: "wh-time", text: fmt(tz).time.format(at) }),
    el("td", { class: "wh-number", text: phone(run.number) }),
    label(run),
    el("td", { class: "wh-rtt", text: run.rtt_ms != null ? seconds(run.rtt_ms) : "—" }),
    el("td", { class: "wh-seen", text: seen(run) }),
    el("td", { class: "wh-trigger muted", text: run.trigger === "schedule" ? "planifié" : `demandé par ${run.trigger}` }));
}

function chart(runs, tz, now) {
  const start = now - DAYS * DAY_MS;
  const passes = runs.filter((r) => r.state === "passed" && r.rtt_ms != null).sort((a, b) => when(a) - when(b));
  const top = Math.max(5, Math.ceil(Math.max(0, ...passes.map((r) => r.rtt_ms / 1000)) * 1.25));
  const x = (ms) => LEFT + ((ms - start) / (now - start)) * (W - LEFT - RIGHT);
  const y = (s) => H - BOTTOM - (s / top) * (H - TOP - BOTTOM);
  const parts = [svg("rect", { x: LEFT, y: TOP, width: W - LEFT - RIGHT, height: H - TOP - BOTTOM, class: "wh-plot" })];
  for (const s of [0, top / 2, top]) {
    parts.push(svg("line", { x1: LEFT, x2: W - RIGHT, y1: y(s), y2: y(s), class: "wh-grid" }),
      svg("text", { x: LEFT - 6, y: y(s) + 4, class: "wh-axis", "text-anchor": "end", text: `${s.toLocaleString("fr-FR", { maximumFractionDigits: 1 })} s` }));
  }
  // A tick at each local midnight, the day's name under the middle of its day.
  for (let day = localMidnight(start, tz); day < now; day = localMidnight(day + DAY_MS + 3 * 3600000, tz)) {
    if (day > start) parts.push(svg("line", { x1: x(day), x2: x(day), y1: TOP, y2: H - BOTTOM, class: "wh-day" }));
    const middle = Math.max(start, day) / 2 + Math.min(now, day + DAY_MS) / 2;
    if (Math.min(now, day + DAY_MS) - Math.max(start, day) > DAY_MS / 3) {
      parts.push(svg("text", { x: x(middle), y: H - 10, class: "wh-axis", "text-anchor": "middle", text: fmt(tz).tick.format(new Date(middle)) }));
    }
  }
  const title = (run, text) => svg("title", { text: `${fmt(tz).day.format(new Date(when(run)))} ${fmt(tz).time.format(new Date(when(run)))} — ${text}` });
  // The passes joined, the line broken at each failure: a failure never looks bridged over.
  const failedAt = runs.filter((r) => r.state === "failed").map(when);
  let segment = [];
  const flush = () => {
    if (segment.length > 1) {
      parts.push(svg("polyline", { points: segment.map((r) => `${x(when(r)).toFixed(1)},${y(r.rtt_ms / 1000).toFixed(1)}`).join(" "), class: "wh-trend" }));
    }
    segment = [];
  };
  passes.forEach((r, i) => {
    if (i > 0 && failedAt.some((f) => f > when(passes[i - 1]) && f < when(r))) flush();
    segment.push(r);
  });
  flush();
  for (const run of runs) {
    const cx = x(when(run));
    if (cx < LEFT) continue;
    if (run.state === "passed" && run.rtt_ms != null) {
      parts.push(svg("circle", { cx, cy: y(run.rtt_ms / 1000), r: 4.5, class: "wh-pass", "data-mark": "passed" },
        title(run, `renvoi vérifié en ${seconds(run.rtt_ms)}`)));
    } else if (run.state === "failed") {
      // A red rule across the chart, and a triangle above it: seen from across the room.
      parts.push(svg("line", { x1: cx, x2: cx, y1: TOP, y2: H - BOTTOM, class: "wh-fail-rule" }),
        svg("path", { d: `M${(cx - 6).toFixed(1)},${TOP - 12} L${(cx + 6).toFixed(1)},${TOP - 12} L${cx.toFixed(1)},${TOP - 2} Z`,
          class: "wh-fail", "data-mark": "failed" }, title(run, `en échec : ${run.outcome_label || run.outcome}`)));
    } else if (run.state === "interrupted") {
      parts.push(svg("circle", { cx, cy: H - BOTTOM, r: 3.5, class: "wh-off", "data-mark": "interrupted" },
        title(run, "interrompu, sans verdict")));
    }
  }
  const failures = runs.filter((r) => r.state === "failed").length;
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "wh-chart", role: "img",
    "aria-label": `Temps aller-retour des tests de renvoi sur ${DAYS} jours : ${passes.length} vérifié${passes.length > 1 ? "s" : ""}, ${failures} en échec` },
  parts);
}

function legend() {
  return el("p", { class: "wh-legend muted" },
    el("span", { class: "wh-key wh-key-pass", text: "●" }), " renvoi vérifié (temps aller-retour)  ",
    el("span", { class: "wh-key wh-key-fail", text: "▼" }), " en échec  ",
    el("span", { class: "wh-key wh-key-off", text: "●" }), " interrompu (sans verdict)");
}

function practiceSection(practice, history, now) {
  const tz = history.timezone || practice.timezone || "Europe/Paris";
  const runs = history.runs || [];
  const next = (practice.next || [])[0];
  const failures = runs.filter((r) => r.state === "failed").length;
  const passes = runs.filter((r) => r.state === "passed").length;
  return el("article", { class: "wh-practice", "data-watch-practice": practice.practice },
    el("header", { class: "wh-head" },
      el("h3", { text: practice.name }),
      el("span", { class: "muted", text: FORWARDING[practice.forwarding] || practice.forwarding }),
      el("span", { class: `wh-count ${failures ? "wh-ko" : "wh-ok"}`,
        text: `${passes} vérifié${passes > 1 ? "s" : ""}, ${failures} en échec sur ${DAYS} jours` }),
      el("span", { class: "wh-next muted", text: next ? `prochain test : ${fmt(tz).day.format(new Date(next.at))} à ${fmt(tz).time.format(new Date(next.at))}` : "aucun test prévu" })),
    chart(runs, tz, now),
    legend(),
    runs.length ? el("table", { class: "team wh-table" },
      el("thead", {}, el("tr", {}, ...["Date", "Heure", "Numéro", "Résultat", "Aller-retour", "Ce qui a été vu", "Lancé"].map((t) => el("th", { text: t })))),
      el("tbody", {}, runs.map((r) => row(r, tz))))
      : el("p", { class: "empty", text: `Aucun test sur les ${DAYS} derniers jours.` }));
}

// Reads each watched practice's history and draws the view (`overview`: GET /api/watch).
export async function loadWatchHistory(overview) {
  const practices = (overview && overview.practices) || [];
  const histories = await Promise.all(practices.map((p) => api("GET",
    `/api/practices/${encodeURIComponent(p.practice)}/watch?days=${DAYS}&limit=200`)));
  const now = Date.now();
  $("watch-history").replaceChildren(...practices.map((p, i) => practiceSection(p, histories[i], now)));
  $("watch-history-empty").hidden = practices.length > 0;
  document.body.dataset.watchHistory = String(now); // drawn: the tests wait for it
}
