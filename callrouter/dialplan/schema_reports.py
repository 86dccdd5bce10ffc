"""The dialplan's `reports` section: who receives the practice's activity report, and when the
weekly e-mail goes (docs/dialplan.md: reports).

```yaml
reports:
  email: cabinet@example.fr          # one address, or a list of them
  weekly: monday 07:00               # local day and time; "off": no weekly e-mail
```
"""

from __future__ import annotations

import re

from callrouter.dialplan.context import Context
from callrouter.dialplan.errors import did_you_mean
from callrouter.dialplan.yamlsrc import YNode, YScalar, YSeq
from callrouter.domain.model import WEEKDAYS, ReportSubscription

KEYS = ("email", "weekly")
DEFAULT_WEEKLY = "monday 07:00"
DAY_NAMES = {name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday",
                                               "saturday", "sunday"))} | {d: i for i, d in enumerate(WEEKDAYS)}
MAX_RECIPIENTS = 10
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def read_reports(ctx: Context, node: YNode | None) -> ReportSubscription | None:
    r = ctx.reader
    m = r.mapping(node, "reports", KEYS, required=("email",))
    if m is None:
        return None
    emails = _emails(ctx, m.get("email"))
    weekly = _weekly(ctx, m.get("weekly"))
    if not emails or weekly is False:
        return None
    weekday, minute = weekly if weekly is not None else (None, 0)
    return ReportSubscription(emails, weekday, minute)


def _emails(ctx: Context, node: YNode | None) -> tuple[str, ...]:
    r = ctx.reader
    nodes = [(n, f"reports.email[{i}]") for i, n in enumerate(node.items)] if isinstance(node, YSeq) \
        else [(node, "reports.email")]
    if isinstance(node, YSeq) and not node.items:
        r.error(node.line, "reports.email", "lists no address: give at least one")
    if len(nodes) > MAX_RECIPIENTS:
        r.error(node.line, "reports.email", f"lists {len(nodes)} addresses; at most {MAX_RECIPIENTS}")
        return ()
    out: list[str] = []
    for n, path in nodes:
        value = r.text(n, path)
        if value is None:
            continue
        if not _EMAIL.match(value):
            r.error(n.line, path, f'"{value}" is not an e-mail address (such as cabinet@example.fr)')
        elif value.lower() in (e.lower() for e in out):
            r.error(n.line, path, f'"{value}" is listed twice')
        else:
            out.append(value)
    return tuple(out)


def _weekly(ctx: Context, node: YNode | None) -> tuple[int, int] | None | bool:
    """(weekday, minute); None for "off"; False after an error."""
    r = ctx.reader
    if node is None:
        return DAY_NAMES["monday"], 7 * 60
    if isinstance(node, YScalar) and node.value is False:  # YAML `off`/`false` read as a boolean
        return None
    value = r.text(node, "reports.weekly")
    if value is None:
        return False
    if value.strip().lower() == "off":
        return None
    parts = value.split()
    if len(parts) != 2:
        r.error(node.line, "reports.weekly", f'"{value}" is not a day and a time; write e.g. '
                                             f'"{DEFAULT_WEEKLY}", "mon 07:00" or off')
        return False
    day = parts[0].lower()
    if day not in DAY_NAMES:
        r.error(node.line, "reports.weekly", f'"{parts[0]}" is not a day{did_you_mean(day, DAY_NAMES)}; '
                                             f"use monday ... sunday (or mon ... sun)")
        return False
    minute = r.time_of_day(parts[1], node.line, "reports.weekly", allow_24=False)
    return False if minute is None else (DAY_NAMES[day], minute)

