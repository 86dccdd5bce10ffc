"""The dialplan as strict, frozen, typed values: what the YAML loader builds and `decide()` reads.

Times of day are minutes since local midnight; dated periods are naive local datetimes, read in the
practice's time zone. Nothing here does I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Mapping, Union

# The values of times.py and rota.py are part of this model: every name stays importable from here.
from callrouter.domain.rota import (  # noqa: F401
    SUNDAY, HolidayCover, HolidayEntry, OnCallRota, Recurrence, RotaEntry, RotaException, RotaFeed, RotaShift,
)
from callrouter.domain.times import MINUTES_PER_DAY, WEEKDAYS, Period, TimeRange, WeeklyHours  # noqa: F401
from callrouter.domain.watch_spec import WatchSpec
from callrouter.domain.kpis import KpiParams
from callrouter.domain.recording import RecordingSpec


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


@dataclass(frozen=True)
class ReportSubscription:
    """Who receives the practice's activity report, and when the weekly one is sent
    (docs/dialplan.md: reports): `weekday` 0 (Monday) to 6, None for no weekly e-mail; `minute`
    the local time of day, in minutes since midnight. Each one covers the last full ISO week."""

    emails: tuple[str, ...]
    weekday: int | None = 0
    minute: int = 7 * 60


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
    reports: ReportSubscription | None = None  # the weekly activity report's contact
    watch: WatchSpec | None = None  # the forwarding watch (callrouter.domain.watch), off when None
    recording: RecordingSpec | None = None  # call recording and voicemail e-mails (domain.recording)
    kpis: KpiParams = field(default_factory=KpiParams)  # the indicators' parameters (KPIS.md), its own or the defaults

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
