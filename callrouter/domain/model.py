"""The dialplan as strict, frozen, typed values: what the YAML loader builds and `decide()` reads.

Times of day are minutes since local midnight; dated periods are naive local datetimes, read in the
practice's time zone. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Mapping, Union

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class TimeRange:
    """A daily range [start, end) in minutes since midnight; end <= start means it crosses midnight."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Period:
    """A dated local period [start, end), naive local wall-clock times."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, local: dt.datetime) -> bool:
        return self.start <= local < self.end


@dataclass(frozen=True)
class WeeklyHours:
    """Ranges per weekday, Monday first (index = datetime.weekday())."""

    days: tuple[tuple[TimeRange, ...], ...] = ((),) * 7

    def is_empty(self) -> bool:
        return not any(self.days)


# --- route actions: what to do with a call -----------------------------------------------------


@dataclass(frozen=True)
class IvrAction:
    menu: str


@dataclass(frozen=True)
class QueueAction:
    queue: str
    announce: str | None = None


@dataclass(frozen=True)
class AnnounceAction:
    prompt: str
    then: "Action | None" = None


@dataclass(frozen=True)
class VoicemailAction:
    announce: str | None = None


@dataclass(frozen=True)
class ForwardAction:
    """Ring a destination the practice approved (another practice line, a partner service)."""

    destination: str
    announce: str | None = None


@dataclass(frozen=True)
class CallbackOfferAction:
    announce: str | None = None


@dataclass(frozen=True)
class EscalateAction:
    """Start the tier's escalation chain; the caller hears the tier's announcement, if any."""

    tier: str


@dataclass(frozen=True)
class HangupAction:
    pass


Action = Union[
    IvrAction,
    QueueAction,
    AnnounceAction,
    VoicemailAction,
    ForwardAction,
    CallbackOfferAction,
    EscalateAction,
    HangupAction,
]


@dataclass(frozen=True)
class IvrOption:
    digit: str
    action: Action
    reason: str | None = None
    tier: str | None = None


@dataclass(frozen=True)
class IvrMenu:
    name: str
    prompt: str
    options: Mapping[str, IvrOption]
    timeout_s: float = 6.0
    retries: int = 2
    invalid_prompt: str | None = None
    on_timeout: Action | None = None


QUEUE_STRATEGIES = ("longest_idle", "fewest_calls", "skill", "ring_all")


@dataclass(frozen=True)
class Queue:
    name: str
    label: str
    priority: int = 0
    wrap_up_s: float = 10.0
    announce_interval_s: float = 45.0
    strategy: str = "longest_idle"  # longest_idle | fewest_calls | skill | ring_all
    shared: str | None = None  # the shared line this queue's calls wait in with other practices'

    @property
    def line(self) -> str | None:
        return f"line:{self.shared}" if self.shared else None


@dataclass(frozen=True)
class Overflow:
    wait_max_s: float
    queue_max: int
    then: Action


@dataclass(frozen=True)
class Routes:
    open: Action
    closed: Action
    holiday: Action | None = None
    closure: Action | None = None
    overflow: Overflow | None = None


# --- calendar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closure:
    period: Period
    reason: str
    announce: str | None = None
    route: Action | None = None


@dataclass(frozen=True)
class Opening:
    period: Period
    reason: str


@dataclass(frozen=True)
class CalendarSpec:
    timezone: str
    country: str
    subdivision: str | None
    hours: WeeklyHours
    closures: tuple[Closure, ...] = ()
    openings: tuple[Opening, ...] = ()


# --- people, on-call, escalation ----------------------------------------------------------------


@dataclass(frozen=True)
class Practitioner:
    id: str
    name: str
    role: str = ""
    phone: str | None = None
    email: str | None = None
    sites: tuple[str, ...] = ()


@dataclass(frozen=True)
class RotaEntry:
    days: tuple[int, ...]
    hours: TimeRange
    who: str


@dataclass(frozen=True)
class RotaException:
    period: Period
    who: str | None  # None: nobody on call in that period (declared hole)


@dataclass(frozen=True)
class Recurrence:
    """A shift repeating every `interval` days (daily) or weeks (weekly, on `days`), at the local
    wall-clock time of its first occurrence; `until` is the last possible start."""

    freq: str  # daily | weekly
    interval: int = 1
    days: tuple[int, ...] = ()  # weekly: weekdays (0 = Monday); empty: the first occurrence's
    until: dt.datetime | None = None
    week_start: int = 0
    exdates: frozenset[dt.datetime] = frozenset()  # starts left out


@dataclass(frozen=True)
class RotaShift:
    """A dated on-call shift (from an iCalendar feed): `period` is its first occurrence."""

    period: Period
    who: str | None  # None: nobody on call (a declared hole)
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class RotaFeed:
    """Where a rota's shifts come from: an iCalendar file next to the dialplan, or a URL the daemon
    fetches every `refresh_s` into a cache. `names`: name in the feed -> practitioner id or None."""

    url: str | None
    file: str | None
    names: Mapping[str, str | None]
    refresh_s: float = 900.0


SUNDAY = 6


@dataclass(frozen=True)
class HolidayEntry:
    """A range of the rota's own public-holiday pattern (starting on the holiday, like a weekly one)."""

    hours: TimeRange
    who: str


@dataclass(frozen=True)
class HolidayCover:
    """What the weekly pattern does on a public holiday: the ranges of weekday `like` (default
    Sunday; None: the weekday the holiday falls on), or, when `entries` is given, those instead."""

    like: int | None = SUNDAY
    entries: tuple[HolidayEntry, ...] = ()


@dataclass(frozen=True)
class OnCallRota:
    """Who is on call: dated exceptions first, then the feed's shifts, then the weekly pattern.

    `holiday_calendar` is the (country, subdivision) whose public holidays `holidays` applies on:
    the practice's calendar (None: no holidays, the weekly pattern applies every day as written)."""

    weekly: tuple[RotaEntry, ...] = ()
    exceptions: tuple[RotaException, ...] = ()
    backup: str | None = None
    until: dt.date | None = None
    shifts: tuple[RotaShift, ...] = ()
    feed: RotaFeed | None = None
    holidays: HolidayCover = HolidayCover()
    holiday_calendar: tuple[str, str | None] | None = None


ESCALATION_CHANNELS = ("sms", "call", "email")


@dataclass(frozen=True)
class EscalationStep:
    channel: str
    target: str  # "on_call", "backup" or a practitioner id
    wait_s: float = 0.0
    ack_digit: str = "1"


@dataclass(frozen=True)
class EscalationTier:
    name: str
    steps: tuple[EscalationStep, ...]
    announce: str | None = None
    repeat: int = 0


# --- diary context --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsultationType:
    id: str
    label: str
    duration_min: int
    practitioners: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    patients: str = "all"  # all | new | known
    booking: str = "direct"  # direct | filter
    notes: str = ""


@dataclass(frozen=True)
class ReservedSlot:
    days: tuple[int, ...]
    hours: TimeRange
    purpose: str
    practitioner: str | None = None
    site: str | None = None


# The diary platforms a dialplan may name (code -> the name secretaries know it by): the schema
# accepts these codes and the screen-pop shows these names.
DIARY_PLATFORMS = {
    "doctolib": "Doctolib",
    "maiia": "Maiia",
    "keldoc": "Keldoc",
    "clickdoc": "ClickDoc",
    "docorga": "Docorga",
    "medoucine": "Medoucine",
    "clicrdv": "ClicRDV",
    "rdvmedicaux": "RDVmédicaux",
    "other": "Autre plateforme",
}


@dataclass(frozen=True)
class Diary:
    platform: str  # a key of DIARY_PLATFORMS
    booking_link: str | None = None
    instructions: str = ""
    consultation_types: tuple[ConsultationType, ...] = ()
    reserved_slots: tuple[ReservedSlot, ...] = ()


# --- the practice -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    address: str
    numbers: tuple[str, ...]
    calendar: CalendarSpec


@dataclass(frozen=True)
class Dialplan:
    practice: str
    name: str
    version: str  # content hash of the file: every decision carries it
    source: str  # file path, for messages
    numbers: tuple[str, ...]  # numbers that reach the practice's main calendar
    calendar: CalendarSpec
    routes: Routes
    ivr: Mapping[str, IvrMenu] = field(default_factory=dict)
    queues: Mapping[str, Queue] = field(default_factory=dict)
    sites: Mapping[str, Site] = field(default_factory=dict)
    practitioners: Mapping[str, Practitioner] = field(default_factory=dict)
    on_call: OnCallRota | None = None
    escalation: Mapping[str, EscalationTier] = field(default_factory=dict)
    diary: Diary | None = None
    prompts: Mapping[str, str] = field(default_factory=dict)  # practice's own prompt texts

    def calendar_for(self, site: str | None) -> CalendarSpec:
        return self.sites[site].calendar if site else self.calendar

    @functools.cached_property
    def number_sites(self) -> Mapping[str, str | None]:
        """Number dialled -> site id (None: the practice's main line)."""
        out: dict[str, str | None] = {n: None for n in self.numbers}
        for site in self.sites.values():
            for n in site.numbers:
                out[n] = site.id
        return out
