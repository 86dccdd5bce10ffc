// The forwarding watch of each practice's lines (GET /api/watch): a failed watch stays red until a
// supervisor acknowledges it (POST /api/watch/{id}/acknowledge); each watched number shows its last
// verdict, at the practice's local time. The panel is hidden when no practice is watched.
import { phone } from "/static/console.format.js";
import { $, el } from "/static/wallboard.util.js";

function hourMinute(iso, tz) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit", timeZone: tz || undefined });
}

function verdict(last, tz) {
  if (!last) return ["pas encore testé", "unknown"];
  if (last.state === "passed") {
    const rtt = last.rtt_ms != null ? ` en ${(last.rtt_ms / 1000).toLocaleString("fr-FR", { maximumFractionDigits: 1 })} s` : "";
    return [`renvoi vérifié à ${hourMinute(last.ended_at || last.started_at, tz)}${rtt}`, "passed"];
  }
  if (last.state === "failed") return [`en échec : ${last.outcome_label || last.outcome || "pas de retour"}`, "failed"];
  return ["test en cours", "running"];
}

function alarm(practice, run, acknowledge) {
  return el("article", { class: "watch-alarm attention", "data-watch-run": run.id },
    el("header", { class: "chain-head" },
      el("strong", { text: practice.name }),
      el("span", { class: "ref", text: phone(run.number) })),
    el("p", { class: "chain-state", text: `Le renvoi de la ligne ne fonctionne plus : ${run.outcome_label || run.outcome || "l'appel de test n'est pas revenu"}` }),
    el("p", { class: "chain-time muted", text: `Constaté à ${hourMinute(run.ended_at || run.started_at, practice.timezone)}, après ${run.attempts.length} essai${run.attempts.length > 1 ? "s" : ""}` }),
    el("button", { class: "take danger", onclick: (e) => acknowledge(run, e.currentTarget), text: "J'ai prévenu le cabinet" }));
}

function line(practice, n) {
  const [text, css] = verdict(n.last, practice.timezone);
  return el("li", { class: `watch-line watch-${css}`, "data-watch-number": n.number },
    el("span", { class: "watch-practice", text: practice.name }),
    el("span", { class: "watch-number", text: phone(n.number) }),
    el("span", { class: "watch-verdict", text }));
}

export function renderWatch(overview, acknowledge) {
  const practices = (overview && overview.practices) || [];
  $("watch-panel").hidden = practices.length === 0;
  const alarms = practices.flatMap((p) => p.alarms.map((r) => alarm(p, r, acknowledge)));
  const lines = practices.flatMap((p) => p.numbers.map((n) => line(p, n)));
  $("watch").replaceChildren(...alarms, el("ul", { class: "watch-lines" }, lines));
  const summary = $("watch-summary");
  summary.textContent = alarms.length ? `${alarms.length} renvoi${alarms.length > 1 ? "s" : ""} en échec`
    : overview && overview.enabled ? "tous vérifiés" : "tests désactivés";
  summary.classList.toggle("hot", alarms.length > 0);
}
