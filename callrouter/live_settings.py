"""The settings file read again on SIGHUP, applied to the running service without a restart.

A file with problems is refused whole, each problem logged with the file and its key path, and the
running settings stay. A good file is compared with what runs (callrouter.settings_diff): each live
change goes at once to the running part that holds it (`parts`: part name -> a function taking the
new running settings, wired by callrouter.app); each change that needs a restart is named, with the
unit to restart, in one log line per unit, and left as it runs. The reload is audited as the system
with the keys it changed, and counted (`callrouter_settings_reloads_total{result}`;
`callrouter_settings_restart_pending`: changed keys still waiting for a restart).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from callrouter import settings_diff as diff
from callrouter.config import ConfigError, Settings, load_settings

logger = logging.getLogger(__name__)

RESULTS = ("applied", "unchanged", "refused")


@dataclass(frozen=True)
class Outcome:
    result: str  # one of RESULTS
    plan: diff.Plan = diff.Plan()
    problems: tuple[str, ...] = ()


class SettingsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reloads = Counter("callrouter_settings_reloads", "Settings reloads (SIGHUP), by result",
                               ["result"], registry=registry)
        for result in RESULTS:
            self.reloads.labels(result)
        self.restart_pending = Gauge("callrouter_settings_restart_pending",
                                     "Settings changed in the file that wait for a restart to apply",
                                     registry=registry)


class SettingsReload:
    def __init__(self, path: str | Path | None, running: Settings, parts: Mapping[str, Callable[[Settings], None]],
                 audit: Callable[[str, dict, dict, dict], Any], registry: CollectorRegistry, whole: bool,
                 load: Callable[[Path], Settings] = load_settings) -> None:
        """`path`: the settings file the service started from (None: the defaults, nothing to read);
        `audit(target, before, after, details)`: writes the audit entry (off the reactor);
        `whole`: `callrouter serve`, where the three units are one process."""
        self.path = Path(path) if path is not None else None
        self.running = running
        self._parts, self._audit, self._whole, self._load = parts, audit, whole, load
        self.metrics = SettingsMetrics(registry)

    def reload(self) -> Outcome:
        if self.path is None:
            logger.info("settings: started without a settings file: nothing to reload")
            return self._count(Outcome("unchanged"))
        try:
            new = self._load(self.path)
        except ConfigError as exc:
            return self._refused(exc.source, tuple(exc.problems))
        plan = diff.plan(self.running, new)
        if plan.empty:
            logger.info("settings: %s read again: no change", self.path)
            return self._count(Outcome("unchanged", plan))
        effective = diff.applied(self.running, new, plan)
        problems = tuple(effective.problems())
        if problems:  # the live changes do not hold with the values that wait for a restart
            return self._refused(str(self.path), tuple(
                f"{p} (with the changes that need a restart left as they run)" for p in problems))
        for part in plan.parts():
            try:
                self._parts[part](effective)
            except Exception:  # a bug: said, and the other parts still take theirs
                logger.exception("settings: %s not applied (%s): restart callrouter to apply them",
                                 ", ".join(c.key for c in plan.live if diff.LIVE_KEYS[c.key] == part), part)
        self.running = effective
        self._say(plan)
        self._audited(plan)
        return self._count(Outcome("applied", plan))

    # -- telling ------------------------------------------------------------------------------

    def _refused(self, source: str, problems: tuple[str, ...]) -> Outcome:
        for problem in problems:
            logger.error("settings refused: %s: %s", source, problem)
        logger.error("settings refused: %s: %d problem(s); the running settings stay", source, len(problems))
        return self._count(Outcome("refused", problems=problems))

    def _say(self, plan: diff.Plan) -> None:
        if plan.live:
            logger.info("settings applied: %s", ", ".join(
                f"{c.key} {diff.shown(c.old, c.key)!r} -> {diff.shown(c.new, c.key)!r}" for c in plan.live))
        if plan.seed:
            logger.warning("settings: %s only seed the team at the database's first start: the team is "
                           "edited in the wallboard or the API; unchanged", ", ".join(c.key for c in plan.seed))
        units = plan.by_unit()
        if self._whole and units:
            keys = tuple(dict.fromkeys(k for ks in units.values() for k in ks))
            needs, them = _needs(keys)
            logger.warning("settings: %s %s a restart of callrouter serve (%s); left as %s", ", ".join(keys),
                           needs, ", ".join(units), them)
        else:
            for unit, keys in units.items():
                needs, them = _needs(keys)
                logger.warning("settings: %s %s a restart of %s; left as %s", ", ".join(keys), needs, unit, them)

    def _audited(self, plan: diff.Plan) -> None:
        """Keys, and the values of the live ones (a secret as ***); never a restart key's value."""
        before = {c.key: diff.shown(c.old, c.key) for c in plan.live}
        after = {c.key: diff.shown(c.new, c.key) for c in plan.live}
        details = {"file": str(self.path), "applied": [c.key for c in plan.live], "seed": [c.key for c in plan.seed],
                   "restart": {unit: list(keys) for unit, keys in plan.by_unit().items()}}
        try:
            self._audit("settings", before, after, details)
        except Exception:
            logger.exception("settings reload not audited")

    def _count(self, outcome: Outcome) -> Outcome:
        self.metrics.reloads.labels(outcome.result).inc()
        if outcome.result != "refused":
            self.metrics.restart_pending.set(len(outcome.plan.restart))
        return outcome


def running_parts(parts: Mapping[str, Any], cli_level: int | None = None) -> dict[str, Callable[[Settings], None]]:
    """Each live part of the service tree (callrouter.app.build's parts) and how it takes new
    settings; the names are those of settings_diff.LIVE_KEYS. `cli_level`: the log level of the
    command line (-v), in force when the settings name none (default: the root logger's now)."""
    import dataclasses

    def calls(s: Settings) -> None:
        served = s.served_controller
        parts["controller"].ctx.apply(served)  # offers, prompts, callbacks, voicemail: read at use
        parts["desk"].settings = served  # max_missed_offers, read at each missed offer

    def alerts(s: Settings) -> None:
        alert_calls = parts["alerts"]
        alert_calls.settings = dataclasses.replace(
            alert_calls.settings, outbound_trunk=s.served_controller.outbound_trunk,
            ring_timeout_s=s.escalation.call_ring_timeout_seconds,
            digit_timeout_s=s.escalation.call_digit_timeout_seconds, repeats=s.escalation.call_repeats)

    def trunk(s: Settings) -> None:
        """Every part that dials out: forwards and callbacks, alert calls, the watch's calls."""
        calls(s)
        alerts(s)
        watch_calls = parts["watch_calls"]
        watch_calls.settings = dataclasses.replace(watch_calls.settings,
                                                   outbound_trunk=s.served_controller.outbound_trunk)

    def media(s: Settings) -> None:
        pool = parts["pool"]
        pool.settings = s.media  # timeouts read at each worker start or stop
        pool.resizer.follow(s.media)  # the floor, the ceiling and the spare room: the next plan

    def senders(s: Settings) -> None:
        """The escalation's senders: the engine's (its duty alerts' too), the watch's, the reports'."""
        esc = s.escalation
        parts["escalation"].follow(esc)
        for sender in {id(c): c for c in parts.get("watch_senders", ())}.values():
            follow = getattr(sender, "follow", None)
            if follow is not None:
                follow(esc)
        if parts.get("report_mailer") is not None:
            parts["report_mailer"].follow(esc)
        voicemail_mail(s)

    def retention(s: Settings) -> None:
        parts["purger"].follow(s.retention)
        if parts.get("purge") is not None:
            parts["purge"].follow(s.retention.purge_interval_hours * 3600.0)  # restarted from now

    def console(s: Settings) -> None:
        calls(s)  # the next offer's card and pop link
        voicemail_mail(s)

    def voicemail_mail(s: Settings) -> None:
        recording = parts.get("recording")
        if recording is not None:
            recording.mail.follow(s.escalation, s.served_controller.console_url)

    def dialplans(s: Settings) -> None:
        parts["dialplans"].follow(s.dialplan_poll_seconds)

    def watch(s: Settings) -> None:
        parts["watch"].settings = s.watch  # read at each tick and before each call

    def http(s: Settings) -> None:
        """The site's next request, the console sessions' next use, the next login's token."""
        if parts.get("admin_http") is not None:
            parts["admin_http"].follow(s.http)
        if parts.get("api") is not None:
            parts["api"].token_ttl.follow(dt.timedelta(minutes=s.auth.token_ttl_minutes))

    base = logging.getLogger().level if cli_level is None else cli_level

    def log_level(s: Settings) -> None:
        logging.getLogger().setLevel(s.log_level or base)

    return {"calls": calls, "alerts": alerts, "trunk": trunk, "media": media, "senders": senders, "retention": retention,
            "console": console, "dialplans": dialplans,
            "watch": watch, "logging": log_level, "http": http}


def _needs(keys: tuple[str, ...]) -> tuple[str, str]:
    return ("needs", "it runs") if len(keys) == 1 else ("need", "they run")
