"""The dialplan's diary: the booking platform, consultation types and reserved slots
(docs/dialplan.md: diary)."""

from __future__ import annotations

from callrouter.dialplan.context import Context, ref_names
from callrouter.dialplan.fields import join
from callrouter.dialplan.yamlsrc import YNode
from callrouter.domain.model import (
    DIARY_PLATFORMS,
    ConsultationType,
    Diary,
    ReservedSlot,
)

PLATFORMS = tuple(DIARY_PLATFORMS)


def read_diary(ctx: Context, node: YNode | None) -> Diary | None:
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
        pracs = ref_names(ctx, c.get("practitioners"), join(path, "practitioners"), "practitioner")
        sites = ref_names(ctx, c.get("sites"), join(path, "sites"), "site")
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
