"""The dialplan schema: a line-aware YAML tree in, a frozen `Dialplan` out, or every error at once.

The format is documented in docs/dialplan.md; dialplans/ holds examples.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from callrouter.dialplan.errors import DialplanError, did_you_mean
from callrouter.dialplan.fields import DIGITS, Reader, describe, join
from callrouter.dialplan.rotafeed import NOBODY, FeedReader, shifts_from_ics
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain import calendar
from callrouter.domain.model import (
    DIARY_PLATFORMS,
    QUEUE_STRATEGIES,
    WEEKDAYS,
    ESCALATION_CHANNELS,
    Action,
    AnnounceAction,
    CalendarSpec,
    CallbackOfferAction,
    Closure,
    ConsultationType,
    Dialplan,
    Diary,
    EscalateAction,
    EscalationStep,
    EscalationTier,
    ForwardAction,
    HangupAction,
    HolidayCover,
    HolidayEntry,
    IvrAction,
    IvrMenu,
    IvrOption,
    OnCallRota,
    Opening,
    Overflow,
    Period,
    Practitioner,
    Queue,
    QueueAction,
    ReservedSlot,
    Routes,
    RotaEntry,
    RotaException,
    RotaFeed,
    Site,
    TimeRange,
    VoicemailAction,
    WeeklyHours,
)

TOP_KEYS = ("practice", "name", "timezone", "numbers", "calendar", "hours", "sites", "practitioners",
            "queues", "ivr", "routes", "on_call", "escalation", "diary", "prompts")
PLATFORMS = tuple(DIARY_PLATFORMS)
PRIMARY_ACTIONS = ("ivr", "queue", "voicemail", "forward", "callback_offer", "escalate", "hangup")
WORD_ACTIONS = {"hangup": HangupAction(), "voicemail": VoicemailAction(), "callback_offer": CallbackOfferAction()}
SPECIAL_TARGETS = ("on_call", "backup")


@dataclass
class Ref:
    """A name used somewhere, checked once the whole file is read."""

    kind: str  # queue | menu | tier | prompt | practitioner | site
    name: str
    line: int
    path: str


@dataclass
class Context:
    reader: Reader
    refs: list[Ref] = field(default_factory=list)
    feed_reader: FeedReader | None = None
    feed_content: bytes = b""  # the rota feed read with the file: part of the rules' version

    def ref(self, kind: str, name: str | None, node: YNode | None, path: str) -> None:
        if name is not None and node is not None:
            self.refs.append(Ref(kind, name, node.line, path))


def build(tree: YNode | None, source: str, content: bytes, known_prompts: frozenset[str] | None,
          feed_reader: FeedReader | None = None) -> tuple[Dialplan | None, list[DialplanError]]:
    """Build a Dialplan from a parsed file; `known_prompts` None skips the prompt check.

    `feed_reader` gives the cached copy of an on-call rota fetched from a URL (None: URL feeds are
    checked but not read, e.g. by `callrouter check`)."""
    reader = Reader(source)
    ctx = Context(reader, feed_reader=feed_reader)
    root = reader.mapping(tree, "", TOP_KEYS, required=("practice", "name", "timezone", "numbers", "hours", "routes"))
    if root is None:
        return None, reader.errors
    g = root.get
    practice = reader.ident(g("practice"), "practice")
    name = reader.text(g("name"), "name")
    timezone = _timezone(reader, g("timezone"))
    numbers = tuple(reader.each(g("numbers"), "numbers", reader.phone))
    base_cal = _calendar_section(ctx, g("calendar"), "calendar")
    hours = _hours(ctx, g("hours"), "hours") if "hours" in root.items else WeeklyHours()
    country, subdivision, closures, openings = base_cal
    cal = CalendarSpec(timezone or "Europe/Paris", country, subdivision, hours, closures, openings)
    sites = _sites(ctx, g("sites"), cal)
    practitioners = _practitioners(ctx, g("practitioners"))
    queues = _queues(ctx, g("queues"))
    menus = _menus(ctx, g("ivr"))
    routes = _routes(ctx, g("routes"))
    on_call = (_on_call(ctx, g("on_call"), practice, cal, practitioners)
               if "on_call" in root.items else None)
    tiers = _escalation(ctx, g("escalation"))
    diary = _diary(ctx, g("diary")) if "diary" in root.items else None
    prompts = _prompt_texts(ctx, g("prompts"))
    _check_refs(ctx, known_prompts, queues, menus, tiers, practitioners, sites, prompts, on_call)
    _check_tiers(ctx, root, tiers)
    if not numbers and not any(s.numbers for s in sites.values()) and "numbers" in root.items:
        reader.error(root.key_lines["numbers"], "numbers", "no number reaches this practice: list at least one")
    if reader.errors or practice is None or name is None or routes is None:
        return None, reader.errors
    version = hashlib.sha256(content + ctx.feed_content).hexdigest()[:12]
    return Dialplan(
        practice=practice, name=name, version=version, source=source, numbers=numbers, calendar=cal,
        routes=routes, ivr=menus, queues=queues, sites=sites, practitioners=practitioners,
        on_call=on_call, escalation=tiers, diary=diary, prompts=prompts,
    ), []


# --- calendar ---------------------------------------------------------------------------------

def _timezone(r: Reader, node: YNode | None) -> str | None:
    name = r.text(node, "timezone")
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.error(node.line, "timezone", f'"{name}" is not a time zone{did_you_mean(name, available_timezones())}; '
                                       f"use a tz database name such as Europe/Paris or Indian/Reunion")
        return None
    return name


def _calendar_section(ctx: Context, node: YNode | None, path: str):
    r = ctx.reader
    if node is None:
        return "FR", None, (), ()
    m = r.mapping(node, path, ("country", "subdivision", "closures", "openings"))
    if m is None:
        return "FR", None, (), ()
    country = (r.text(m.get("country"), join(path, "country")) or "FR").upper()
    subdivision = _subdivision(r, country, m.get("subdivision"), join(path, "subdivision"))
    closures = tuple(r.each(m.get("closures"), join(path, "closures"), lambda n, p: _closure(ctx, n, p)))
    openings = tuple(r.each(m.get("openings"), join(path, "openings"), lambda n, p: _opening(ctx, n, p)))
    return country, subdivision, closures, openings


def _subdivision(r: Reader, country: str, node: YNode | None, path: str) -> str | None:
    value = r.text(node, path, required=False)
    if value is None:
        return None
    try:
        return calendar.canonical_subdivision(country, value)
    except NotImplementedError:
        r.error(node.line, path, f'no public holidays are known for country "{country}"')
    except (ValueError, KeyError) as exc:
        r.error(node.line, path, f"{exc}{did_you_mean(value, calendar.subdivision_names(country))}")
    return None


def _period(r: Reader, m: YMap, path: str) -> Period | None:
    """from/to as dates (whole days, inclusive) or date-times (end exclusive); or date + hours."""
    if "date" in m.items:
        day = r.date_or_datetime(m.get("date"), join(path, "date"))
        if day is None:
            return None
        if isinstance(day, dt.datetime):
            r.error(m.get("date").line, join(path, "date"), "date takes a day only; put the times in hours")
            return None
        rng = r.time_range(m.get("hours"), join(path, "hours")) if "hours" in m.items else None
        start = dt.datetime.combine(day, dt.time())
        if rng is None:
            return Period(start, start + dt.timedelta(days=1))
        end_offset = rng.end + (1440 if rng.crosses_midnight else 0)
        return Period(start + dt.timedelta(minutes=rng.start), start + dt.timedelta(minutes=end_offset))
    if "from" not in m.items or "to" not in m.items:
        r.error(m.line, path, 'give either "date" (and optional "hours") or both "from" and "to"')
        return None
    a = r.date_or_datetime(m.get("from"), join(path, "from"))
    b = r.date_or_datetime(m.get("to"), join(path, "to"))
    if a is None or b is None:
        return None
    start = a if isinstance(a, dt.datetime) else dt.datetime.combine(a, dt.time())
    end = b if isinstance(b, dt.datetime) else dt.datetime.combine(b + dt.timedelta(days=1), dt.time())
    if end <= start:
        r.error(m.get("to").line, join(path, "to"), f"ends ({b}) before it starts ({a})")
        return None
    return Period(start, end)


def _closure(ctx: Context, node: YNode, path: str) -> Closure | None:
    r = ctx.reader
    m = r.mapping(node, path, ("from", "to", "date", "hours", "reason", "announce", "route"), required=("reason",))
    if m is None:
        return None
    period = _period(r, m, path)
    reason = r.text(m.get("reason"), join(path, "reason"))
    announce = _prompt_ref(ctx, m.get("announce"), join(path, "announce"))
    route = _action(ctx, m.get("route"), join(path, "route")) if "route" in m.items else None
    if period is None or reason is None:
        return None
    return Closure(period, reason, announce, route)


def _opening(ctx: Context, node: YNode, path: str) -> Opening | None:
    r = ctx.reader
    m = r.mapping(node, path, ("from", "to", "date", "hours", "reason"), required=("reason",))
    if m is None:
        return None
    period = _period(r, m, path)
    reason = r.text(m.get("reason"), join(path, "reason"))
    return Opening(period, reason) if period and reason else None


def _hours(ctx: Context, node: YNode | None, path: str) -> WeeklyHours:
    r = ctx.reader
    days: list[list[tuple[TimeRange, int]]] = [[] for _ in range(7)]
    if node is None or (isinstance(node, YScalar) and node.value is None):
        return WeeklyHours()
    if not isinstance(node, YMap):
        r.error(node.line, path, "expected a mapping of days to time ranges, e.g. mon-fri: [08:00-12:30, 13:30-19:00]")
        return WeeklyHours()
    for key, value in node.items.items():
        kpath = join(path, key)
        spec = r.days(key, node.key_lines[key], kpath)
        if isinstance(value, YSeq):
            items = value.items
        elif isinstance(value, YScalar) and value.value is None:
            items = []  # "sun:" with nothing: closed that day
        else:
            items = [value]
        ranges = [rng for i, item in enumerate(items) if (rng := r.time_range(item, f"{kpath}[{i}]"))]
        for day in spec or ():
            for rng in ranges:
                days[day].append((rng, node.key_lines[key]))
    _check_overlaps(r, days, path)
    return WeeklyHours(tuple(tuple(sorted((rng for rng, _ in d), key=lambda x: x.start)) for d in days))


def _check_overlaps(r: Reader, days: list[list[tuple[TimeRange, int]]], path: str) -> None:
    """Ranges of one day may not overlap, nor overlap the part of yesterday's range after midnight."""
    from callrouter.domain.model import WEEKDAYS

    for d in range(7):
        spans = [(rng.start, rng.end if not rng.crosses_midnight else 1440 + rng.end, rng, line) for rng, line in days[d]]
        spans += [(-1440 + rng.start, rng.end, rng, line) for rng, line in days[(d - 1) % 7] if rng.crosses_midnight]
        spans.sort(key=lambda s: s[0])
        for (a0, a1, ra, la), (b0, b1, rb, lb) in zip(spans, spans[1:]):
            if b0 < a1:
                r.error(max(la, lb), path, f"on {WEEKDAYS[d]}, {ra} overlaps {rb}")


# --- sites and people ------------------------------------------------------------------------------

def _sites(ctx: Context, node: YNode | None, practice_cal: CalendarSpec) -> dict[str, Site]:
    r = ctx.reader
    out: dict[str, Site] = {}
    if node is None:
        return out
    m = r.mapping(node, "sites", None)  # keys are site ids, checked below
    if m is None:
        return out
    for sid, snode in m.items.items():
        path = join("sites", sid)
        if not r.ident(YScalar(sid, m.key_lines[sid], sid), path):
            continue
        s = r.mapping(snode, path, ("name", "address", "numbers", "hours", "subdivision", "closures", "openings"),
                      required=("name", "numbers"))
        if s is None:
            continue
        hours = _hours(ctx, s.get("hours"), join(path, "hours")) if "hours" in s.items else practice_cal.hours
        sub = (_subdivision(r, practice_cal.country, s.get("subdivision"), join(path, "subdivision"))
               if "subdivision" in s.items else practice_cal.subdivision)
        closures = r.each(s.get("closures"), join(path, "closures"), lambda n, p: _closure(ctx, n, p))
        openings = r.each(s.get("openings"), join(path, "openings"), lambda n, p: _opening(ctx, n, p))
        cal = CalendarSpec(practice_cal.timezone, practice_cal.country, sub, hours,
                           practice_cal.closures + tuple(closures), practice_cal.openings + tuple(openings))
        out[sid] = Site(sid, r.text(s.get("name"), join(path, "name")) or sid,
                        r.text(s.get("address"), join(path, "address"), required=False) or "",
                        tuple(r.each(s.get("numbers"), join(path, "numbers"), r.phone)), cal)
    return out


def _practitioners(ctx: Context, node: YNode | None) -> dict[str, Practitioner]:
    r = ctx.reader
    out: dict[str, Practitioner] = {}
    for i, item in enumerate(r.sequence(node, "practitioners")):
        path = f"practitioners[{i}]"
        m = r.mapping(item, path, ("id", "name", "role", "phone", "email", "sites"), required=("id", "name"))
        if m is None:
            continue
        pid = r.ident(m.get("id"), join(path, "id"))
        if pid in out:
            r.error(m.get("id").line, join(path, "id"), f'practitioner "{pid}" is listed twice')
            continue
        phone = r.phone(m.get("phone"), join(path, "phone")) if "phone" in m.items else None
        email = r.text(m.get("email"), join(path, "email"), required=False)
        if email and ("@" not in email or " " in email):
            r.error(m.get("email").line, join(path, "email"), f'"{email}" is not an e-mail address')
        sites = []
        for j, sn in enumerate(r.sequence(m.get("sites"), join(path, "sites"))):
            sid = r.text(sn, f"{path}.sites[{j}]")
            ctx.ref("site", sid, sn, f"{path}.sites[{j}]")
            if sid:
                sites.append(sid)
        if pid:
            out[pid] = Practitioner(pid, r.text(m.get("name"), join(path, "name")) or pid,
                                    r.text(m.get("role"), join(path, "role"), required=False) or "",
                                    phone, email, tuple(sites))
    return out


# --- queues, IVR, routes ----------------------------------------------------------------------------

def _queues(ctx: Context, node: YNode | None) -> dict[str, Queue]:
    r = ctx.reader
    out: dict[str, Queue] = {}
    for qname, qnode, path in r.named(node, "queues"):
        q = r.mapping(qnode, path, ("label", "priority", "wrap_up", "announce_interval", "strategy", "shared"),
                      required=("label",))
        if q is None:
            continue
        out[qname] = Queue(qname, r.text(q.get("label"), join(path, "label")) or qname,
                           r.integer(q.get("priority"), join(path, "priority"), 0, 0, 100),
                           r.duration(q.get("wrap_up"), join(path, "wrap_up"), 10.0, hi=600),
                           r.duration(q.get("announce_interval"), join(path, "announce_interval"), 45.0, hi=600),
                           r.one_of(q.get("strategy"), join(path, "strategy"), QUEUE_STRATEGIES, "longest_idle"),
                           r.ident(q.get("shared"), join(path, "shared")) if q.get("shared") is not None else None)
    return out


def _menus(ctx: Context, node: YNode | None) -> dict[str, IvrMenu]:
    r = ctx.reader
    out: dict[str, IvrMenu] = {}
    for mname, mnode, path in r.named(node, "ivr"):
        menu = r.mapping(mnode, path, ("prompt", "options", "timeout", "retries", "invalid_prompt", "on_timeout"),
                         required=("prompt", "options"))
        if menu is None:
            continue
        prompt = _prompt_ref(ctx, menu.get("prompt"), join(path, "prompt"))
        invalid = _prompt_ref(ctx, menu.get("invalid_prompt"), join(path, "invalid_prompt")) if "invalid_prompt" in menu.items else None
        on_timeout = _action(ctx, menu.get("on_timeout"), join(path, "on_timeout")) if "on_timeout" in menu.items else None
        options: dict[str, IvrOption] = {}
        onode = r.mapping(menu.get("options"), join(path, "options"), DIGITS, line=menu.line)
        if onode is not None:
            if not onode.items:
                r.error(onode.line, join(path, "options"), "a menu needs at least one option")
            for digit, opt in onode.items.items():
                if digit in DIGITS:
                    option = _option(ctx, opt, join(join(path, "options"), digit), digit)
                    if option:
                        options[digit] = option
        out[mname] = IvrMenu(mname, prompt or "", options,
                             r.duration(menu.get("timeout"), join(path, "timeout"), 6.0, hi=60),
                             r.integer(menu.get("retries"), join(path, "retries"), 2, 0, 5),
                             invalid, on_timeout)
    return out


def _option(ctx: Context, node: YNode, path: str, digit: str) -> IvrOption | None:
    r = ctx.reader
    m = r.mapping(node, path, ("reason", "tier", "then", "announce", *PRIMARY_ACTIONS))
    if m is None:
        return None
    reason = r.text(m.get("reason"), join(path, "reason"), required=False)
    tier = r.text(m.get("tier"), join(path, "tier"), required=False)
    ctx.ref("tier", tier, m.get("tier"), join(path, "tier"))
    action_keys = [k for k in m.items if k not in ("reason", "tier")]
    if action_keys:
        action = _action_from_map(ctx, m, path, ignore=("reason", "tier"))
    elif tier:
        action = EscalateAction(tier)
    else:
        r.error(m.line, path, f"option {digit} does nothing: give an action (queue, ivr, announce, voicemail, "
                              f"forward, callback_offer, escalate, hangup) or a tier")
        return None
    if action is None:
        return None
    return IvrOption(digit, action, reason, tier)


def _action(ctx: Context, node: YNode | None, path: str) -> Action | None:
    """An action: a word (hangup, voicemail, callback_offer) or a mapping with one primary key."""
    r = ctx.reader
    if node is None:
        return None
    if isinstance(node, YScalar) and isinstance(node.value, str):
        if node.value in WORD_ACTIONS:
            return WORD_ACTIONS[node.value]
        r.error(node.line, path, f'"{node.value}" is not an action{did_you_mean(node.value, WORD_ACTIONS)}; '
                                 f"write hangup, voicemail, callback_offer, or a mapping such as {{queue: general}}")
        return None
    m = r.mapping(node, path, ("announce", "then", *PRIMARY_ACTIONS))
    if m is None:
        return None
    return _action_from_map(ctx, m, path, ignore=())


def _action_from_map(ctx: Context, m: YMap, path: str, ignore: tuple[str, ...]) -> Action | None:
    r = ctx.reader
    primary = [k for k in m.items if k in PRIMARY_ACTIONS]
    announce = _prompt_ref(ctx, m.get("announce"), join(path, "announce")) if "announce" in m.items else None
    if len(primary) > 1:
        r.error(m.line, path, f"give one action, not several ({', '.join(primary)})")
        return None
    if not primary:
        if announce is None:
            if "announce" not in m.items:
                r.error(m.line, path, "no action given (queue, ivr, announce, voicemail, forward, callback_offer, escalate, hangup)")
            return None
        then = _action(ctx, m.get("then"), join(path, "then")) if "then" in m.items else None
        return AnnounceAction(announce, then)
    if "then" in m.items:
        r.error(m.key_lines["then"], join(path, "then"), f'"then" goes with an announce alone, not with {primary[0]}')
    kind = primary[0]
    node = m.get(kind)
    kpath = join(path, kind)
    if kind == "ivr":
        name = r.text(node, kpath)
        ctx.ref("menu", name, node, kpath)
        inner: Action | None = IvrAction(name) if name else None
    elif kind == "queue":
        name = r.text(node, kpath)
        ctx.ref("queue", name, node, kpath)
        return QueueAction(name, announce) if name else None
    elif kind == "voicemail":
        r.boolean(node, kpath, True)
        return VoicemailAction(announce)
    elif kind == "forward":
        number = r.phone(node, kpath)
        return ForwardAction(number, announce) if number else None
    elif kind == "callback_offer":
        r.boolean(node, kpath, True)
        return CallbackOfferAction(announce)
    elif kind == "escalate":
        tier = r.text(node, kpath)
        ctx.ref("tier", tier, node, kpath)
        inner = EscalateAction(tier) if tier else None
    else:
        r.boolean(node, kpath, True)
        inner = HangupAction()
    if inner is not None and announce:
        return AnnounceAction(announce, inner)
    return inner


def _routes(ctx: Context, node: YNode | None) -> Routes | None:
    r = ctx.reader
    m = r.mapping(node, "routes", ("open", "closed", "holiday", "closure", "overflow"), required=("open", "closed"))
    if m is None:
        return None
    acts = {k: _action(ctx, m.get(k), join("routes", k)) for k in ("open", "closed", "holiday", "closure") if k in m.items}
    overflow = None
    if "overflow" in m.items:
        o = r.mapping(m.get("overflow"), "routes.overflow", ("wait_max", "queue_max", "then"), required=("then",))
        if o is not None:
            then = _action(ctx, o.get("then"), "routes.overflow.then")
            if then is not None:
                overflow = Overflow(r.duration(o.get("wait_max"), "routes.overflow.wait_max", 120.0, hi=3600),
                                    r.integer(o.get("queue_max"), "routes.overflow.queue_max", 10, 1, 1000), then)
    if acts.get("open") is None or acts.get("closed") is None:
        return None
    return Routes(acts["open"], acts["closed"], acts.get("holiday"), acts.get("closure"), overflow)


# --- on-call and escalation ---------------------------------------------------------------------

def _on_call(ctx: Context, node: YNode | None, practice: str | None, cal: CalendarSpec,
             practitioners: dict[str, Practitioner]) -> OnCallRota | None:
    """The rota; its public holidays are the practice's (main calendar: country and subdivision)."""
    r = ctx.reader
    m = r.mapping(node, "on_call", ("weekly", "holidays", "exceptions", "backup", "until", "ical"))
    if m is None:
        return None
    weekly = []
    for i, item in enumerate(r.sequence(m.get("weekly"), "on_call.weekly")):
        path = f"on_call.weekly[{i}]"
        e = r.mapping(item, path, ("days", "hours", "who"), required=("days", "hours", "who"))
        if e is None:
            continue
        days_text = r.text(e.get("days"), join(path, "days"))
        days = r.days(days_text, e.get("days").line, join(path, "days")) if days_text else None
        hours = r.time_range(e.get("hours"), join(path, "hours"))
        who = r.text(e.get("who"), join(path, "who"))
        ctx.ref("practitioner", who, e.get("who"), join(path, "who"))
        if days and hours and who:
            weekly.append(RotaEntry(days, hours, who))
    exceptions = []
    for i, item in enumerate(r.sequence(m.get("exceptions"), "on_call.exceptions")):
        path = f"on_call.exceptions[{i}]"
        e = r.mapping(item, path, ("from", "to", "date", "hours", "who"), required=("who",))
        if e is None:
            continue
        period = _period(r, e, path)
        who = r.text(e.get("who"), join(path, "who"), required=False)
        if who is not None and who != "nobody":
            ctx.ref("practitioner", who, e.get("who"), join(path, "who"))
        if period:
            exceptions.append(RotaException(period, None if who in (None, "nobody") else who))
    backup = r.text(m.get("backup"), "on_call.backup", required=False)
    ctx.ref("practitioner", backup, m.get("backup"), "on_call.backup")
    until = None
    if "until" in m.items:
        value = r.date_or_datetime(m.get("until"), "on_call.until")
        until = value.date() if isinstance(value, dt.datetime) else value
    feed, shifts = (_rota_feed(ctx, m.get("ical"), practice, cal.timezone, practitioners)
                    if "ical" in m.items else (None, ()))
    holidays = (_holiday_cover(ctx, m.get("holidays"), "on_call.holidays", m.key_lines["holidays"])
                if "holidays" in m.items else HolidayCover())
    return OnCallRota(tuple(weekly), tuple(exceptions), backup, until, shifts, feed, holidays,
                      (cal.country, cal.subdivision))


USUAL = "usual"


def _holiday_cover(ctx: Context, node: YNode | None, path: str, line: int) -> HolidayCover:
    """on_call.holidays: a day whose pattern applies (sun, the default), `usual` (the day the
    holiday falls on), or the holiday's own entries [{hours, who}]."""
    r = ctx.reader
    if isinstance(node, YSeq):
        entries = []
        for i, item in enumerate(node.items):
            epath = f"{path}[{i}]"
            e = r.mapping(item, epath, ("hours", "who"), required=("hours", "who"))
            if e is None:
                continue
            hours = r.time_range(e.get("hours"), join(epath, "hours"))
            who = r.text(e.get("who"), join(epath, "who"))
            ctx.ref("practitioner", who, e.get("who"), join(epath, "who"))
            if hours and who:
                entries.append(HolidayEntry(hours, who))
        if not node.items:
            r.error(node.line, path, "give at least one entry ({hours, who}), or a day such as sun, or usual: "
                                     "an empty list would leave every public holiday without anyone on call")
        return HolidayCover(like=None, entries=tuple(entries))
    if isinstance(node, YScalar) and isinstance(node.value, str):
        value = r.one_of(node, path, (*WEEKDAYS, USUAL), WEEKDAYS[6])
        return HolidayCover(like=None if value == USUAL else WEEKDAYS.index(value))
    r.error(node.line if node is not None else line, path,
            f"expected a day (sun), usual, or a list of {{hours, who}} entries, got "
            f"{describe(node) if node is not None else 'nothing'}")
    return HolidayCover()


def _rota_feed(ctx: Context, node: YNode | None, practice: str | None, timezone: str,
               practitioners: dict[str, Practitioner]):
    """on_call.ical: {file: rota.ics | url: https://..., map: {name: id | nobody}, refresh: 15m}."""
    r = ctx.reader
    path = "on_call.ical"
    m = r.mapping(node, path, ("file", "url", "map", "refresh"))
    if m is None:
        return None, ()
    if ("file" in m.items) == ("url" in m.items):
        r.error(m.line, path, 'give the rota feed as either "file" (next to this dialplan) or "url", not both')
        return None, ()
    names: dict[str, str | None] = {}
    for name, wnode, wpath in r.named(m.get("map"), join(path, "map"), line=m.line):
        who = r.text(wnode, wpath)
        if who is not None and who != NOBODY:
            ctx.ref("practitioner", who, wnode, wpath)
        names[name] = None if who in (None, NOBODY) else who
    refresh = r.duration(m.get("refresh"), join(path, "refresh"), 900.0, hi=86400)
    if "refresh" in m.items and refresh < 60:
        r.error(m.get("refresh").line, join(path, "refresh"), "refresh at most every minute (e.g. 15m)")
    url = file = None
    data: tuple[bytes, str] | None = None
    if "url" in m.items:
        url = r.text(m.get("url"), join(path, "url"))
        if url is not None and not url.startswith(("https://", "http://")):
            r.error(m.get("url").line, join(path, "url"), f'"{url}" is not an http(s):// address')
            url = None
        if url is not None and practice is not None and ctx.feed_reader is not None:
            data = ctx.feed_reader(practice, url)
    else:
        file = r.text(m.get("file"), join(path, "file"))
        if file is not None:
            target = Path(r.file).parent / file
            try:
                data = target.read_bytes(), str(target)
            except OSError as exc:
                r.error(m.get("file").line, join(path, "file"), f"cannot read {target}: {exc.strerror or exc}")
    feed = RotaFeed(url, file, names, refresh) if (url or file) else None
    if data is None:
        return feed, ()
    content, origin = data
    shifts, problems = shifts_from_ics(content, timezone, names, practitioners)
    for p in problems:
        ctx.reader.errors.append(DialplanError(origin, p.line, path, f"{p.message} (rota feed of {r.file})"))
    ctx.feed_content = content
    return feed, shifts


def _escalation(ctx: Context, node: YNode | None) -> dict[str, EscalationTier]:
    r = ctx.reader
    out: dict[str, EscalationTier] = {}
    if node is None:
        return out
    m = r.mapping(node, "escalation", ("tiers",), required=("tiers",))
    if m is None:
        return out
    for tname, tnode, path in r.named(m.get("tiers"), "escalation.tiers", line=m.line):
        t = r.mapping(tnode, path, ("announce", "steps", "repeat"), required=("steps",))
        if t is None:
            continue
        announce = _prompt_ref(ctx, t.get("announce"), join(path, "announce")) if "announce" in t.items else None
        steps = []
        for i, snode in enumerate(r.sequence(t.get("steps"), join(path, "steps"))):
            spath = f"{path}.steps[{i}]"
            s = r.mapping(snode, spath, (*ESCALATION_CHANNELS, "wait", "ack_digit"))
            if s is None:
                continue
            channels = [c for c in ESCALATION_CHANNELS if c in s.items]
            if len(channels) != 1:
                r.error(s.line, spath, f"a step uses exactly one channel: {', '.join(ESCALATION_CHANNELS)}")
                continue
            target = r.text(s.get(channels[0]), join(spath, channels[0]))
            if target and target not in SPECIAL_TARGETS:
                ctx.ref("practitioner", target, s.get(channels[0]), join(spath, channels[0]))
            ack = r.one_of(s.get("ack_digit"), join(spath, "ack_digit"), DIGITS, "1")
            if target:
                steps.append(EscalationStep(channels[0], target, r.duration(s.get("wait"), join(spath, "wait"), 0.0, hi=86400), ack))
        if not steps and "steps" in t.items:
            r.error(t.line, path, "a tier needs at least one step")
        out[tname] = EscalationTier(tname, tuple(steps), announce, r.integer(t.get("repeat"), join(path, "repeat"), 0, 0, 10))
    return out


def _check_tiers(ctx: Context, root: YMap, tiers: dict[str, EscalationTier]) -> None:
    vital = tiers.get("vital")
    if vital is not None and not vital.announce:
        line = root.get("escalation").line if root.get("escalation") else root.line
        ctx.reader.error(line, "escalation.tiers.vital", 'the vital tier must tell the caller to hang up and dial 15: '
                                                          'give it "announce" (e.g. call_15)')


# --- diary and prompts --------------------------------------------------------------------------

def _diary(ctx: Context, node: YNode | None) -> Diary | None:
    r = ctx.reader
    m = r.mapping(node, "diary", ("platform", "booking_link", "instructions", "consultation_types", "reserved_slots"),
                  required=("platform",))
    if m is None:
        return None
    platform = r.one_of(m.get("platform"), "diary.platform", PLATFORMS, "other")
    link = r.text(m.get("booking_link"), "diary.booking_link", required=False)
    if link and not link.startswith("https://"):
        r.error(m.get("booking_link").line, "diary.booking_link", f'"{link}" must be an https:// address')
    types = []
    seen: set[str] = set()
    for i, item in enumerate(r.sequence(m.get("consultation_types"), "diary.consultation_types")):
        path = f"diary.consultation_types[{i}]"
        c = r.mapping(item, path, ("id", "label", "duration", "practitioners", "sites", "patients", "booking", "notes"),
                      required=("id", "label", "duration"))
        if c is None:
            continue
        cid = r.ident(c.get("id"), join(path, "id"))
        if cid in seen:
            r.error(c.get("id").line, join(path, "id"), f'consultation type "{cid}" is listed twice')
        seen.add(cid or "")
        pracs = _names(ctx, c.get("practitioners"), join(path, "practitioners"), "practitioner")
        sites = _names(ctx, c.get("sites"), join(path, "sites"), "site")
        duration = r.duration(c.get("duration"), join(path, "duration"), 900.0, hi=8 * 3600)
        if cid:
            types.append(ConsultationType(
                cid, r.text(c.get("label"), join(path, "label")) or cid, int(duration // 60), pracs, sites,
                r.one_of(c.get("patients"), join(path, "patients"), ("all", "new", "known"), "all"),
                r.one_of(c.get("booking"), join(path, "booking"), ("direct", "filter"), "direct"),
                r.text(c.get("notes"), join(path, "notes"), required=False) or ""))
    slots = []
    for i, item in enumerate(r.sequence(m.get("reserved_slots"), "diary.reserved_slots")):
        path = f"diary.reserved_slots[{i}]"
        s = r.mapping(item, path, ("days", "hours", "purpose", "practitioner", "site"), required=("days", "hours", "purpose"))
        if s is None:
            continue
        days_text = r.text(s.get("days"), join(path, "days"))
        days = r.days(days_text, s.get("days").line, join(path, "days")) if days_text else None
        hours = r.time_range(s.get("hours"), join(path, "hours"))
        prac = r.text(s.get("practitioner"), join(path, "practitioner"), required=False)
        ctx.ref("practitioner", prac, s.get("practitioner"), join(path, "practitioner"))
        site = r.text(s.get("site"), join(path, "site"), required=False)
        ctx.ref("site", site, s.get("site"), join(path, "site"))
        purpose = r.text(s.get("purpose"), join(path, "purpose"))
        if days and hours and purpose:
            slots.append(ReservedSlot(days, hours, purpose, prac, site))
    return Diary(platform, link, r.text(m.get("instructions"), "diary.instructions", required=False) or "",
                 tuple(types), tuple(slots))


def _names(ctx: Context, node: YNode | None, path: str, kind: str) -> tuple[str, ...]:
    out = []
    for j, n in enumerate(ctx.reader.sequence(node, path)):
        name = ctx.reader.text(n, f"{path}[{j}]")
        ctx.ref(kind, name, n, f"{path}[{j}]")
        if name:
            out.append(name)
    return tuple(out)


def _prompt_ref(ctx: Context, node: YNode | None, path: str) -> str | None:
    name = ctx.reader.text(node, path)
    ctx.ref("prompt", name, node, path)
    return name


def _prompt_texts(ctx: Context, node: YNode | None) -> dict[str, str]:
    r = ctx.reader
    out: dict[str, str] = {}
    for name, tnode, path in r.named(node, "prompts"):
        text = r.text(tnode, path)
        if text:
            out[name] = " ".join(text.split())
    return out


def _check_refs(ctx: Context, known_prompts, queues, menus, tiers, practitioners, sites, prompts, on_call) -> None:
    tables = {
        "queue": (queues, "queues"),
        "menu": (menus, "ivr"),
        "tier": (tiers, "escalation.tiers"),
        "practitioner": (practitioners, "practitioners"),
        "site": (sites, "sites"),
    }
    for ref in ctx.refs:
        if ref.kind == "prompt":
            if known_prompts is not None and ref.name not in known_prompts and ref.name not in prompts:
                pool = set(known_prompts) | set(prompts)
                ctx.reader.error(ref.line, ref.path, f'unknown prompt "{ref.name}"{did_you_mean(ref.name, pool)}: '
                                                     f"add it to prompts/catalogue.yaml, to this file's prompts, "
                                                     f"or record prompts/recorded/{ref.name}.wav")
            continue
        table, where = tables[ref.kind]
        if ref.name not in table:
            ctx.reader.error(ref.line, ref.path, f'{ref.kind} "{ref.name}" is not defined in {where}'
                                                 f"{did_you_mean(ref.name, table)}")
    if on_call is None and any(s.target in SPECIAL_TARGETS for t in tiers.values() for s in t.steps):
        ctx.reader.error(1, "escalation", 'a tier contacts "on_call" or "backup" but the file has no on_call rota')
    if on_call is not None and on_call.backup is None and any(s.target == "backup" for t in tiers.values() for s in t.steps):
        ctx.reader.error(1, "on_call.backup", 'a tier contacts "backup" but on_call names no backup')
