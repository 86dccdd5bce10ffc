"""CLI: `check`, `simulate` and `calendar` — the administrator's tools on dialplan files."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from callrouter.config import CONFIG_ENV, DEFAULT_CONFIG, ConfigError, add_config_argument, load_settings
from callrouter.dialplan.loader import LoadResult, load_paths
from callrouter.dialplan.rotafeed import FeedReader, cli_feed_reader
from callrouter.domain import calendar, escalation, oncall
from callrouter.domain.call import Call
from callrouter.domain.decision import describe_action
from callrouter.domain.ivr import TIMEOUT
from callrouter.domain.routing import Router, overflow_decision
from callrouter.domain import timeline as tl
from callrouter.domain.model import Dialplan
from callrouter.prompts import DEFAULT_DIR, Catalogue
from callrouter.watch.forecast import describe as describe_watch, forecast as watch_forecast, to_dict as watch_to_dict

DEFAULT_DIALPLANS = os.environ.get("CALLROUTER_DIALPLANS", "dialplans")


def register(sub) -> None:
    p = sub.add_parser("check", help="validate dialplan files (exit 0 when all are valid, 1 otherwise)")
    p.add_argument("paths", nargs="*", default=[DEFAULT_DIALPLANS], help="files or directories (default: dialplans)")
    _prompts_arg(p)
    add_config_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("simulate", help="show what happens to a call at a given local time, and why")
    p.add_argument("--number", required=True, help="the number dialled, e.g. +33143550101")
    p.add_argument("--at", required=True, help="local time of the practice, e.g. 2026-12-25T10:00")
    p.add_argument("--digits", default="", help="IVR choices in order, e.g. 2 or 31; t for a menu left unanswered")
    p.add_argument("--caller", default=None, help="caller's number (optional)")
    p.add_argument("--overflow", choices=("wait", "length", "nobody"), help="show where the call overflows")
    p.add_argument("--dialplans", nargs="*", default=[DEFAULT_DIALPLANS])
    _prompts_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("calendar", help="forecast which route applies when, and warn about gaps")
    p.add_argument("--practice", required=True)
    p.add_argument("--site", default=None, help="a site id of a multi-site practice")
    p.add_argument("--from", dest="start", default=None, help="first local day (default: today)")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--dialplans", nargs="*", default=[DEFAULT_DIALPLANS])
    _prompts_arg(p)
    add_config_argument(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calendar)


def _prompts_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", type=Path, default=DEFAULT_DIR, help="prompt catalogue directory")


def _load(paths, prompts_dir: Path, feed_reader: FeedReader | None = None) -> LoadResult:
    return load_paths(paths, Catalogue.load(prompts_dir), feed_reader)


def _settings(config: str | None):
    """(settings or None, where they come from, why they could not be read): --config, else
    $CALLROUTER_CONFIG, else ./callrouter.yaml if present, else the defaults."""
    path = config or os.environ.get(CONFIG_ENV) or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None)
    source = path or "the default settings"
    try:
        return load_settings(path), source, None
    except ConfigError as exc:
        return None, source, "; ".join(exc.problems)


def settings_warnings(dialplans: list[Dialplan], config: str | None) -> list[str]:
    """Warnings about the daemon settings these dialplans would run with."""
    settings, source, problem = _settings(config)
    if settings is None:
        return [f"settings {source} cannot be read, so they were not checked against the dialplans: {problem}"]
    esc = settings.escalation
    return [w for w in (escalation_disabled_warning(dialplans, esc.enabled, source),
                        voice_calls_off_warning(dialplans, esc.enabled and not esc.voice_calls, source)) if w]


def shared_line_warnings(dialplans: list[Dialplan]) -> list[str]:
    """Queues sharing a line (`shared:`) with different strategies or priorities: one line, so the
    calls of one practice would be dealt with unlike the others' in the same line."""
    lines: dict[str, list[tuple[Dialplan, Any]]] = {}
    for d in dialplans:
        for q in d.queues.values():
            if q.shared:
                lines.setdefault(q.shared, []).append((d, q))
    out = []
    for name, members in sorted(lines.items()):
        for what in ("strategy", "priority"):
            values = {getattr(q, what) for _, q in members}
            if len(values) > 1:
                listed = "; ".join(f"{d.source} ({d.practice}/{q.name}): {getattr(q, what)}" for d, q in members)
                out.append(f"shared line {name!r}: its queues do not agree on {what}: {listed}. "
                           f"Each call is served by its own queue's {what}; give them the same.")
    return out


def voice_calls_off_warning(dialplans: list[Dialplan], off: bool, source: str) -> str | None:
    """`call` steps while escalation runs without its voice channel: they go out as SMS."""
    with_calls = [(d, sorted(name for name, tier in d.escalation.items()
                             if any(step.channel == "call" for step in tier.steps))) for d in dialplans]
    with_calls = [(d, tiers) for d, tiers in with_calls if tiers]
    if not off or not with_calls:
        return None
    listed = "; ".join(f"{d.source} ({d.practice}): {', '.join(tiers)}" for d, tiers in with_calls)
    return (f"voice calls are off in {source} (escalation.voice_calls is false), yet {len(with_calls)} "
            f"dialplan(s) have `call` steps: {listed}. These steps are sent as SMS instead (no phone rings, "
            f"no key to acknowledge). Set escalation.voice_calls: true, with an outbound trunk, to ring "
            f"the practitioners.")


def escalation_disabled_warning(dialplans: list[Dialplan], enabled: bool, source: str) -> str | None:
    """Tiers defined while escalation is off: the caller hears the tier's message, nobody is alerted."""
    with_tiers = [d for d in dialplans if d.escalation]
    if enabled or not with_tiers:
        return None
    listed = "; ".join(f"{d.source} ({d.practice}): {', '.join(sorted(d.escalation))}" for d in with_tiers)
    return (f"escalation is disabled in {source} (escalation.enabled is false), yet {len(with_tiers)} "
            f"dialplan(s) define escalation tiers: {listed}. Calls sent to these tiers still hear the tier's "
            f"message, but no practitioner is alerted (no SMS, e-mail or call). Enable escalation in the "
            f"settings (escalation.enabled: true, with ack_secret and a channel) or remove the tiers.")


def cmd_check(args) -> int:
    result = _load(args.paths, args.prompts)
    warnings = settings_warnings(result.dialplans, args.config) + shared_line_warnings(result.dialplans)
    if args.json:
        print(json.dumps({
            "ok": result.ok,
            "warnings": warnings,
            "files": result.files,
            "valid": [{"practice": d.practice, "file": d.source, "version": d.version} for d in result.dialplans],
            "errors": [{"file": e.file, "line": e.line, "path": e.path, "message": e.message} for e in result.errors],
        }, ensure_ascii=False, indent=2))
        return 0 if result.ok else 1
    for e in result.errors:
        print(e, file=sys.stderr)
    if not result.files:
        print("no dialplan files found in: " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 1
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    bad = len(result.failed_files)
    for d in result.dialplans:
        print(f"ok  {d.source}  practice {d.practice}  version {d.version}")
    print(f"{len(result.files) - bad} valid, {bad} invalid, {len(result.errors)} error(s)")
    return 0 if result.ok and result.files else 1


def _report_load_errors(result: LoadResult) -> None:
    for e in result.errors:
        print(f"warning: {e} (file ignored)", file=sys.stderr)


def cmd_simulate(args) -> int:
    result = _load(args.dialplans, args.prompts)
    _report_load_errors(result)
    router = Router(result.dialplans)
    dialplan = router.by_number.get(args.number)
    tz = dialplan.calendar_for(dialplan.number_sites[args.number]).timezone if dialplan else "Europe/Paris"
    try:
        now, note = parse_local(args.at, tz)
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return 2
    digits = tuple(TIMEOUT if d in "tT" else d for d in args.digits.replace(",", "").replace(" ", ""))
    call = Call(args.number, args.caller, digits)
    decision = router.decide(call, now)
    if args.overflow and dialplan is not None:
        decision = overflow_decision(dialplan, call, now, args.overflow)
    who = on_call_now(dialplan, now) if dialplan else None
    alerts = alerts_now(dialplan, now, decision.tier) if dialplan else []
    if args.json:
        out = decision.to_dict()
        out["at"] = now.astimezone(calendar.zone(tz)).isoformat()
        if note:
            out["note"] = note
        out["on_call"] = who
        out["alerts"] = alerts
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    local = now.astimezone(calendar.zone(tz))
    practice = f"{dialplan.name} ({dialplan.practice}" + (f", site {decision.site}" if decision.site else "") + ")" if dialplan else "no practice"
    print(f"call to {args.number} at {local.strftime('%a %Y-%m-%d %H:%M %Z')}: {practice}")
    if note:
        print(f"note: {note}")
    print(f"decision: {describe_action(decision.action)}")
    if decision.reason:
        print(f"reason: {decision.reason}")
    if decision.tier:
        print(f"escalation: tier '{decision.tier}'")
    print("why:")
    for line in decision.why:
        print(f"  - {line}")
    if who is not None:
        print(f"on call: {_person(who['who'], who['name'])}, {who['detail']}" if who["who"]
              else f"on call: nobody ({who['detail']})")
    if alerts:
        print("who each tier alerts if it starts now (first round):")
    for tier in alerts:
        steps = "; ".join(
            f"{s['step']}. {s['channel']} {s['target']}" + (f": skipped ({s['skipped']})" if s["skipped"]
                                                             else f" -> {_person(s['practitioner'], s['name'])}")
            for s in tier["steps"])
        print(f"  tier '{tier['tier']}': {steps}" + ("  <- starts with this call" if tier["starts"] else ""))
    if decision.dialplan_version:
        print(f"rules: version {decision.dialplan_version}")
    return 0


def _person(pid: str | None, name: str | None) -> str:
    return f"{pid} ({name})" if name and name != pid else str(pid)


def on_call_now(dialplan: Dialplan, now: dt.datetime) -> dict | None:
    """Who the rota has on call at an instant, as escalation reads it; None without a rota."""
    if dialplan.on_call is None:
        return None
    got = oncall.on_call(dialplan.on_call, calendar.local_time(dialplan.calendar.timezone, now))
    person = dialplan.practitioners.get(got.who) if got.who else None
    return {"who": got.who, "name": person.name if person else None, "rule": got.rule, "detail": got.detail}


def alerts_now(dialplan: Dialplan, now: dt.datetime, starting: str | None) -> list[dict]:
    """For each tier, whom its steps would reach if it started at `now` (the same `resolve` as the
    escalation engine); practitioners by id and name, never their numbers."""
    out = []
    for name, tier in dialplan.escalation.items():
        steps = []
        for i, step in enumerate(tier.steps):
            got = escalation.resolve(step, 0, i, dialplan, now)
            pid = got.practitioner
            person = dialplan.practitioners.get(pid) if pid else None
            steps.append({"step": i + 1, "channel": step.channel, "target": step.target, "practitioner": pid,
                          "name": person.name if person else None,
                          "skipped": got.reason if isinstance(got, escalation.Skip) else None})
        out.append({"tier": name, "starts": name == starting, "steps": steps})
    return out


def parse_local(text: str, tz: str) -> tuple[dt.datetime, str | None]:
    """An aware instant from a local time (or an ISO time with offset); a note for DST oddities."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f'"{text}" is not a date and time; write e.g. 2026-12-25T10:00') from None
    if value.tzinfo is not None:
        return value, None
    zone = calendar.zone(tz)
    first = value.replace(tzinfo=zone, fold=0)
    second = value.replace(tzinfo=zone, fold=1)
    note = None
    if first.utcoffset() != second.utcoffset():
        if first.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) != value:
            note = f"{text} does not exist in {tz} (clocks go forward); read as {first.astimezone(zone).isoformat()}"
        else:
            note = f"{text} happens twice in {tz} (clocks go back); the first one is used"
    return first, note


def cmd_calendar(args) -> int:
    settings, settings_source, _ = _settings(args.config)
    feed_notes: list[str] = []  # on-call feeds published at a URL: fetched now, else the daemon's copy
    feeds = cli_feed_reader(settings.var_dir / "ical" if settings else None, feed_notes)
    result = _load(args.dialplans, args.prompts,
                   lambda practice, url: feeds(practice, url) if practice == args.practice else None)
    _report_load_errors(result)
    router = Router(result.dialplans)
    dialplan = router.dialplans.get(args.practice)
    if dialplan is None:
        known = ", ".join(sorted(router.dialplans)) or "none"
        print(f"error: no valid dialplan for practice '{args.practice}' (loaded: {known})", file=sys.stderr)
        return 1
    if args.site and args.site not in dialplan.sites:
        print(f"error: practice '{args.practice}' has no site '{args.site}' (sites: {', '.join(dialplan.sites) or 'none'})",
              file=sys.stderr)
        return 1
    if not 1 <= args.days <= 731:
        print("error: --days must be between 1 and 731", file=sys.stderr)
        return 2
    spec = dialplan.calendar_for(args.site)
    zone = calendar.zone(spec.timezone)
    try:
        first_day = dt.date.fromisoformat(args.start) if args.start else dt.datetime.now(zone).date()
    except ValueError:
        print(f'error: --from: "{args.start}" is not a date (2026-12-01)', file=sys.stderr)
        return 2
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(first_day + dt.timedelta(days=args.days), dt.time(), tzinfo=zone)
    segments = tl.timeline(dialplan, start, end, args.site)
    warns = tl.warnings(dialplan, segments, start, end, args.site)
    warns += [tl.Warning("settings", None, None, w) for w in settings_warnings([dialplan], args.config)]
    warns += [tl.Warning("rota_feed", None, None, n) for n in feed_notes if f" of {dialplan.practice} " in n]
    watches, watch_notes = watch_forecast(dialplan, start, end, settings.watch if settings else None, settings_source)
    warns += [tl.Warning("watch", None, None, n) for n in watch_notes]
    if args.json:
        print(json.dumps({
            "practice": dialplan.practice, "site": args.site, "version": dialplan.version, "timezone": spec.timezone,
            "from": start.isoformat(), "to": end.isoformat(),
            "segments": [tl.segment_to_dict(s, spec.timezone) for s in segments],
            "watches": [watch_to_dict(w, dialplan.calendar.timezone) for w in watches],
            "warnings": [tl.warning_to_dict(w, spec.timezone) for w in warns],
        }, ensure_ascii=False, indent=2))
        return 0
    print(f"{dialplan.name} ({dialplan.practice}{', site ' + args.site if args.site else ''}), "
          f"rules version {dialplan.version}, times in {spec.timezone}")
    day = None
    for s in segments:
        a, b = s.start.astimezone(zone), s.end.astimezone(zone)
        if a.date() != day:
            day = a.date()
            print(f"\n{a.strftime('%a %Y-%m-%d')}")
        end_txt = b.strftime("%H:%M") if b.date() == a.date() else b.strftime("%a %d %H:%M")
        print(f"  {a.strftime('%H:%M')}-{end_txt:<10} {s.status:<8} {s.detail}: {describe_action(s.action)}"
              + (f" | on call: {s.on_call.who or 'nobody'} ({s.on_call.detail})" if s.on_call else ""))
    if dialplan.watch is not None:  # when the forwarding watch calls the practice's lines
        print(f"\nforwarding watch: {len(watches)} call(s) planned" + (", the next ones:" if watches else ""))
        for w in watches[:10]:
            print(f"  {describe_watch(w, dialplan.calendar.timezone)}")
    print()
    if not warns:
        print("no warnings")
    for w in warns:
        when = ""
        if w.start:
            when = w.start.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")
            if w.end:
                when += " -> " + w.end.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")
            when += ": "
        mark = "!" if w.severity == "warning" else "i"
        print(f"{mark} {when}{w.message}")
    return 0
