"""The dialplan schema: a line-aware YAML tree in, a frozen `Dialplan` out, or every error at once.

The format is documented in docs/dialplan.md; dialplans/ holds examples. This module reads the
file's top level, its practitioners and prompt texts, and checks the names used once the whole file
is read; each section has its module: schema_calendar.py (time zone, calendar, hours, sites),
schema_routes.py (queues, IVR, routes), schema_oncall.py (on-call rota, escalation),
schema_diary.py (diary).
"""

from __future__ import annotations

import hashlib

from callrouter.dialplan.context import Context
from callrouter.dialplan.errors import DialplanError, did_you_mean
from callrouter.dialplan.fields import Reader, join
from callrouter.dialplan.rotafeed import FeedReader
from callrouter.dialplan.schema_calendar import read_calendar_section, read_hours, read_sites, read_timezone
from callrouter.dialplan.schema_diary import PLATFORMS, read_diary
from callrouter.dialplan.schema_oncall import SPECIAL_TARGETS, check_tiers, read_escalation, read_on_call
from callrouter.dialplan.schema_recording import read_recording
from callrouter.dialplan.schema_kpis import read_kpis
from callrouter.dialplan.schema_reports import read_reports
from callrouter.dialplan.schema_routes import read_menus, read_queues, read_routes
from callrouter.dialplan.schema_watch import read_watch
from callrouter.dialplan.yamlsrc import YNode
from callrouter.domain.kpis import KpiParams
from callrouter.domain.model import CalendarSpec, Dialplan, Practitioner, WeeklyHours
from callrouter.domain.recording import CONSENT_PROMPT

__all__ = ("PLATFORMS", "TOP_KEYS", "build")

TOP_KEYS = ("practice", "name", "timezone", "numbers", "calendar", "hours", "sites", "practitioners",
            "queues", "ivr", "routes", "on_call", "escalation", "diary", "prompts", "reports", "watch",
            "recording", "kpis")


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
    timezone = read_timezone(reader, g("timezone"))
    numbers = tuple(reader.each(g("numbers"), "numbers", reader.phone))
    base_cal = read_calendar_section(ctx, g("calendar"), "calendar")
    hours = read_hours(ctx, g("hours"), "hours") if "hours" in root.items else WeeklyHours()
    country, subdivision, closures, openings = base_cal
    cal = CalendarSpec(timezone or "Europe/Paris", country, subdivision, hours, closures, openings)
    sites = read_sites(ctx, g("sites"), cal)
    practitioners = _practitioners(ctx, g("practitioners"))
    queues = read_queues(ctx, g("queues"))
    menus = read_menus(ctx, g("ivr"))
    routes = read_routes(ctx, g("routes"))
    on_call = (read_on_call(ctx, g("on_call"), practice, cal, practitioners)
               if "on_call" in root.items else None)
    tiers = read_escalation(ctx, g("escalation"))
    diary = read_diary(ctx, g("diary")) if "diary" in root.items else None
    prompts = _prompt_texts(ctx, g("prompts"))
    reports = read_reports(ctx, g("reports")) if "reports" in root.items else None
    kpis = read_kpis(ctx, g("kpis")) if "kpis" in root.items else KpiParams()
    watch = read_watch(ctx, g("watch"), numbers, sites) if "watch" in root.items else None
    recording, consent = read_recording(ctx, g("recording"), numbers, sites) if "recording" in root.items else (None, None)
    if consent:  # the practice's own consent message, built and played as its prompt
        prompts = {**prompts, CONSENT_PROMPT: " ".join(consent.split())}
    _check_refs(ctx, known_prompts, queues, menus, tiers, practitioners, sites, prompts, on_call)
    check_tiers(ctx, root, tiers)
    if not numbers and not any(s.numbers for s in sites.values()) and "numbers" in root.items:
        reader.error(root.key_lines["numbers"], "numbers", "no number reaches this practice: list at least one")
    if reader.errors or practice is None or name is None or routes is None:
        return None, reader.errors
    version = hashlib.sha256(content + ctx.feed_content).hexdigest()[:12]
    return Dialplan(
        practice=practice, name=name, version=version, source=source, numbers=numbers, calendar=cal,
        routes=routes, ivr=menus, queues=queues, sites=sites, practitioners=practitioners,
        on_call=on_call, escalation=tiers, diary=diary, prompts=prompts, reports=reports,
        watch=watch, recording=recording, kpis=kpis,
    ), []


# --- people, prompts, references ------------------------------------------------------------------

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
