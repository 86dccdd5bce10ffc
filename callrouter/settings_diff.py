"""What a settings reload may change on the running service, and what needs a restart.

Pure: two Settings in, a Plan out. Every leaf of the settings (a dotted key such as
`controller.ring_timeout_s`) that differs is one of:

- live: applied at once to the running parts (the LIVE table says which part takes it);
- seed: read only once, to seed the team in the database at its first start (the coverage, the
  levels, the pause reasons): the team is edited in the wallboard or the API, never restarted;
- restart: the value is built into something that lives as long as its process (a listening
  port, a connection, the workers' ports, a key file, a value copied into several parts); it is
  left as it runs and named with the unit to restart (`callrouter`, `callrouter-media`,
  `callrouter-edge`).

A key not named in the tables needs a restart of `callrouter`: a new setting is restart-only
until somebody makes it live on purpose. Some keys are live one way only (LIVE_WHEN): raising
`media.workers_max` past the ports the edge lists, or switching the forwarding watch on, needs a
restart; lowering it, or switching it off (its kill switch), does not.

`applied(old, new, plan)` is what the service runs after the reload: the old settings with the
live changes only; a change is never half-applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Callable, Mapping

from callrouter.config import Settings

CONTROLLER, MEDIA, EDGE = "callrouter", "callrouter-media", "callrouter-edge"
LIVE, SEED = "live", "seed"

# The escalation's senders' settings (the HTTP SMS gateway, the SMTP relay, the SMSC's bind): every
# sender built from them (the engine's and its duty alerts', the watch's alerts', the weekly
# reports' mailer) takes them for its next message, while the kinds of channel stay (_same_senders).
SENDER_KEYS = (
    "sms_url", "sms_method", "sms_format", "sms_body_template", "sms_auth_header", "sms_username", "sms_password",
    "sms_id_field", "http_timeout_seconds", "smtp_host", "smtp_port", "smtp_starttls", "smtp_cafile",
    "smtp_username", "smtp_password", "smtp_from", "smpp_host", "smpp_port", "smpp_system_id", "smpp_password",
    "smpp_system_type", "smpp_source_addr", "smpp_tls", "smpp_cafile", "smpp_enquire_link_seconds",
    "smpp_reconnect_seconds", "smpp_long_messages")
# Shown and audited as "***" (a live key's value is logged and audited otherwise).
SECRET_KEYS = frozenset(f"escalation.{k}" for k in (
    "sms_auth_header", "sms_password", "smtp_password", "smpp_password"))

# Live keys -> the running part that takes them (callrouter.live_settings applies each part once).
LIVE_KEYS: Mapping[str, str] = {
    **{f"controller.{k}": "calls" for k in (
        "ring_timeout_s", "pop_lead_s", "max_missed_offers", "voicemail_max_s", "voicemail_silence_s",
        "callback_digit_timeout_s", "callback_retry_s", "callback_attempts", "callback_patient_ring_s",
        "callback_confirm_s", "hold_prompt", "ringback_prompt", "beep_prompt",
        "callback_expiry_s")},  # the controller's, the reaper's and the API's next task (read at use)
    **{f"escalation.{k}": "alerts" for k in (
        "call_ring_timeout_seconds", "call_digit_timeout_seconds", "call_repeats")},
    **{f"media.{k}": "media" for k in (
        "legs_wanted", "workers_min", "workers_max", "spare_calls", "arrival_lead_seconds",
        "idle_retire_seconds", "retire_grace_seconds", "ready_timeout_seconds")},
    **{f"retention.{k}": "retention" for k in (
        "call_records_days", "recordings_days", "audit_days", "state_history_days", "watch_days")},
    **{f"watch.{k}": "watch" for k in ("enabled", "max_calls_per_day", "max_in_flight", "catch_up_minutes")},
    **{f"escalation.{k}": "senders" for k in SENDER_KEYS},
    "controller.outbound_trunk": "trunk",  # the calls', the alert calls' and the watch's
    "controller.console_url": "console",  # the offers' card and pop, the voicemail e-mails
    "retention.purge_interval_hours": "retention",
    "dialplan_poll_seconds": "dialplans",
    "log_level": "logging",
    # The HTTP server's settings besides its socket: the next request's, an open session's next one.
    **{f"http.{k}": "http" for k in ("max_body_bytes", "hsts_max_age_s", "console.inactivity_minutes",
                                      "console.cookie_secure")},
    "auth.token_ttl_minutes": "http",  # the next login's token; those issued keep their expiry
}

SEED_KEYS = frozenset({"controller.secretaries", "controller.levels", "controller.agents",
                       "http.console.pause_reasons"})

# Restart-only keys held by another unit than the controller (prefixes; the longest matches).
RESTART_UNITS: Mapping[str, tuple[str, ...]] = {
    "sip.": (EDGE,),
    # The controller's pool gives each new worker these; the running ones keep theirs.
    "media.bind": (CONTROLLER, MEDIA, EDGE),
    "media.sip_port_base": (CONTROLLER, MEDIA, EDGE),
    "media.rtp_port_base": (CONTROLLER, MEDIA),
    "media.rtp_ports_per_worker": (CONTROLLER, MEDIA),
    "media.pj_log_level": (CONTROLLER, MEDIA),
    "media.stop_timeout_seconds": (CONTROLLER, MEDIA),  # the media service's own copy too
    "media.stable_after_seconds": (CONTROLLER, MEDIA),
    "media.restart_delay": (CONTROLLER, MEDIA),
    "auth.sip_realm": (CONTROLLER, EDGE),
    "database_url": (CONTROLLER, EDGE),
    "var_dir": (CONTROLLER, MEDIA, EDGE),
}


def _workers_max_live(old: Settings, new: Settings) -> bool:
    """The edge lists the workers_max ports it started with: more workers need its restart."""
    return not old.sip.enabled or new.media.workers_max <= old.media.workers_max


def _watch_enabled_live(old: Settings, new: Settings) -> bool:
    """Off at once (the kill switch); on needs its lead and schedule built at start."""
    return not new.watch.enabled


def _senders(s: Settings) -> tuple:
    """The kinds of sender built at start: the outbox file, the HTTP gateway or the SMSC, SMTP."""
    e = s.escalation
    sms = "smpp" if e.sms_gateway == "smpp" else "http" if e.sms_url else None
    return e.enabled, e.outbox_file, sms, bool(e.smtp_host)


def _same_senders(old: Settings, new: Settings) -> bool:
    """A sender's settings change is live while no sender comes or goes (a new URL, not a first)."""
    return _senders(old) == _senders(new)


LIVE_WHEN: Mapping[str, Callable[[Settings, Settings], bool]] = {
    "media.workers_max": _workers_max_live,
    "watch.enabled": _watch_enabled_live,
    **{f"escalation.{k}": _same_senders for k in SENDER_KEYS},
}
WHY_NOT_LIVE: Mapping[str, tuple[str, ...]] = {
    "media.workers_max": (EDGE,),
    "watch.enabled": (CONTROLLER,),
    **{f"escalation.{k}": (CONTROLLER,) for k in SENDER_KEYS},
}


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Plan:
    live: tuple[Change, ...] = ()
    seed: tuple[Change, ...] = ()
    restart: tuple[tuple[Change, tuple[str, ...]], ...] = ()  # each change and the units to restart

    @property
    def empty(self) -> bool:
        return not (self.live or self.seed or self.restart)

    def parts(self) -> tuple[str, ...]:
        """The running parts the live changes go to, each once, in table order."""
        wanted = {LIVE_KEYS[c.key] for c in self.live}
        return tuple(dict.fromkeys(part for part in LIVE_KEYS.values() if part in wanted))

    def by_unit(self) -> dict[str, tuple[str, ...]]:
        """Unit -> the keys that wait for its restart."""
        out: dict[str, list[str]] = {}
        for change, units in self.restart:
            for unit in units:
                out.setdefault(unit, []).append(change.key)
        return {unit: tuple(keys) for unit, keys in out.items()}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a settings dataclass by its dotted key (mappings and tuples are leaves)."""
    out: dict[str, Any] = {}
    for f in fields(value):
        key = f"{prefix}{f.name}"
        leaf = getattr(value, f.name)
        if is_dataclass(leaf):
            out.update(flatten(leaf, key + "."))
        else:
            out[key] = leaf
    return out


def kind(key: str, old: Settings, new: Settings) -> tuple[str, ...]:
    """(LIVE,), (SEED,) or the units whose restart the change of `key` needs. Any change that
    alters the edge's configuration (`Settings.edge`: e.g. `controller.console_url` gives the
    WebSocket's allowed origins) needs the edge's restart too, and one that alters what the
    controller took at start (the secretaries' domain, from the edge's address) the controller's."""
    if key in SEED_KEYS:
        return (SEED,)
    if key in LIVE_WHEN:
        return (LIVE,) if LIVE_WHEN[key](old, new) else WHY_NOT_LIVE[key]
    if key in LIVE_KEYS:
        units: tuple[str, ...] = (LIVE,)
    else:
        prefix = max((p for p in RESTART_UNITS if key == p or key.startswith(p)), key=len, default=None)
        units = RESTART_UNITS[prefix] if prefix is not None else (CONTROLLER,)
    if CONTROLLER not in units and _changes(key, old, new, _served_at_start):
        units = tuple(u for u in units if u != LIVE) + (CONTROLLER,)
    if EDGE not in units and old.sip.enabled and _changes(key, old, new, lambda s: s.edge):
        # Not applied live either, so that the controller and the edge never disagree.
        units = tuple(u for u in units if u != LIVE) + ((CONTROLLER,) if LIVE in units else ()) + (EDGE,)
    return units


_LIVE_CONTROLLER = frozenset(k.split(".", 1)[1] for k in LIVE_KEYS if k.startswith("controller."))


def _served_at_start(s: Settings) -> tuple:
    """What the controller takes at start only of its served settings (e.g. the secretaries'
    domain, from the edge's address)."""
    served = s.served_controller
    return tuple(getattr(served, f.name) for f in fields(served) if f.name not in _LIVE_CONTROLLER)


def _changes(key: str, old: Settings, new: Settings, derived: Callable[[Settings], Any]) -> bool:
    """Does the change of `key` alone alter what `derived` makes of the settings?"""
    path = key.split(".")
    value = new
    for name in path:
        value = getattr(value, name)
    try:
        return derived(_set(old, path, value)) != derived(old)
    except Exception:  # a value that does not hold with the others alone: assume it does
        return True


def plan(old: Settings, new: Settings) -> Plan:
    before, after = flatten(old), flatten(new)
    live, seed, restart = [], [], []
    for key, value in after.items():
        if before[key] == value:
            continue
        change = Change(key, before[key], value)
        how = kind(key, old, new)
        if how == (LIVE,):
            live.append(change)
        elif how == (SEED,):
            seed.append(change)
        else:
            restart.append((change, how))
    return Plan(tuple(live), tuple(seed), tuple(restart))


def applied(old: Settings, new: Settings, p: Plan) -> Settings:
    """`old` with the live changes of `p` taken from `new`, nothing else."""
    out = old
    for change in p.live:
        out = _set(out, change.key.split("."), change.new)
    return out


def _set(value: Any, path: list[str], leaf: Any) -> Any:
    head, *rest = path
    inner = leaf if not rest else _set(getattr(value, head), rest, leaf)
    return dataclasses.replace(value, **{head: inner})


def shown(value: Any, key: str = "") -> Any:
    """A value as the audit log and the log lines show it (paths as text; a secret as ***)."""
    if key in SECRET_KEYS and value is not None:
        return "***"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

