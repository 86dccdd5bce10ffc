"""The dialplan's `recording` section: whether calls are recorded for training or quality, the
consent message and its refuse key, per practice and per number; and who is e-mailed a new
voicemail message (docs/recording.md).

```yaml
recording:
  mode: sampled                      # off | sampled | campaign | on_demand (default off)
  percent: 10                        # sampled: the share of calls; campaign: default 100
  from: 2026-03-02                   # campaign: first and last local day, both included
  to: 2026-03-27
  refuse_digit: "9"                  # the key that refuses (default 9)
  consent: "Cet appel peut être enregistré..."   # the practice's own consent message
  consent_wait: 3s                   # after the message, the key still heard this long
  numbers:                           # a number with a policy of its own (same keys but consent)
    "+33142000002": {mode: off}
  voicemail_email: cabinet@example.fr            # one address or a list: told of each message
```

The practice's `consent` text becomes its prompt `recording_consent` (built by `make prompts`
like the other texts); without it the catalogue's text is played. Every error names the file,
the line and the key.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

from callrouter.dialplan.context import Context
from callrouter.dialplan.fields import join
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain.model import Site
from callrouter.domain.recording import CAMPAIGN, CONSENT_PROMPT, MODES, OFF, SAMPLED, RecordingPolicy, RecordingSpec

KEYS = ("mode", "percent", "from", "to", "refuse_digit", "consent", "consent_wait", "numbers", "voicemail_email")
NUMBER_KEYS = ("mode", "percent", "from", "to", "refuse_digit", "consent_wait")
REFUSE_DIGITS = "0123456789*"
MAX_RECIPIENTS = 10
MAX_CONSENT_CHARS = 600
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def read_recording(ctx: Context, node: YNode | None, numbers: tuple[str, ...],
                   sites: Mapping[str, Site]) -> tuple[RecordingSpec | None, str | None]:
    """The section's spec (None after an error), and the practice's consent text if it gave one."""
    r = ctx.reader
    if isinstance(node, YScalar) and (node.value is False or str(node.value).strip().lower() == "off"):
        return RecordingSpec(), None
    m = r.mapping(node, "recording", KEYS)
    if m is None:
        return None, None
    errors = len(r.errors)
    default = _policy(ctx, m, "recording", RecordingPolicy())
    consent = None
    if "consent" in m.items:
        consent = r.text(m.get("consent"), "recording.consent")
        if consent and len(consent) > MAX_CONSENT_CHARS:
            r.error(m.get("consent").line, "recording.consent",
                    f"is {len(consent)} characters long; at most {MAX_CONSENT_CHARS} (a caller hears it before the queue)")
    own = {n for n in numbers} | {n for s in sites.values() for n in s.numbers}
    by_number: dict[str, RecordingPolicy] = {}
    for number_key, n, path in r.named(m.get("numbers"), "recording.numbers", m.line):
        number = r.phone(YScalar(number_key, n.line, number_key), path)
        if number is None:
            continue
        if number not in own:
            r.error(n.line, path, f"{number} is not a number of this practice (numbers or a site's numbers)")
            continue
        if number in by_number:
            r.error(n.line, path, f"{number} is given twice")
            continue
        nm = r.mapping(n, path, NUMBER_KEYS, required=("mode",))
        if nm is not None:
            by_number[number] = _policy(ctx, nm, path, default)
    emails = _emails(ctx, m.get("voicemail_email"))
    other_key = next((p.refuse_digit for p in (default, *by_number.values()) if p.refuse_digit != "9"), None)
    if other_key is not None and consent is None:
        r.error(m.line, "recording.consent", f'the refuse key is "{other_key}" but the catalogue\'s message says 9: '
                                             "give the practice's own message (consent) naming its key")
    if len(r.errors) > errors:
        return None, None
    return RecordingSpec(default, by_number, emails), consent


def _policy(ctx: Context, m: YMap, path: str, inherited: RecordingPolicy) -> RecordingPolicy:
    r = ctx.reader
    g = m.get
    mode = r.one_of(g("mode"), join(path, "mode"), MODES, OFF)
    percent = _percent(ctx, g("percent"), join(path, "percent"), 100.0)
    if mode == SAMPLED and "percent" not in m.items:
        r.error(m.line, path, 'mode "sampled" needs "percent": the share of calls recorded, e.g. percent: 10')
    if "percent" in m.items and mode not in (SAMPLED, CAMPAIGN):
        r.error(m.key_lines["percent"], join(path, "percent"), f'means nothing with mode "{mode}": leave it out')
    first = _day(ctx, g("from"), join(path, "from"))
    last = _day(ctx, g("to"), join(path, "to"))
    if mode == CAMPAIGN and not ("from" in m.items and "to" in m.items):
        r.error(m.line, path, 'mode "campaign" needs "from" and "to": its first and last day, e.g. from: 2026-03-02')
    if mode != CAMPAIGN and ("from" in m.items or "to" in m.items):
        key = "from" if "from" in m.items else "to"
        r.error(m.key_lines[key], join(path, key), 'is the window of a campaign: give it with mode "campaign"')
    if first is not None and last is not None and last < first:
        r.error(m.key_lines["to"], join(path, "to"), f"{last.isoformat()} is before from: {first.isoformat()}")
    digit = inherited.refuse_digit
    if "refuse_digit" in m.items:
        value = r.text(g("refuse_digit"), join(path, "refuse_digit"))
        if value is not None and (len(value) != 1 or value not in REFUSE_DIGITS):
            r.error(g("refuse_digit").line, join(path, "refuse_digit"),
                    f'"{value}" is not a key of the phone: one of 0-9 or *, e.g. "9"')
        elif value is not None:
            digit = value
    wait = r.duration(g("consent_wait"), join(path, "consent_wait"), inherited.consent_wait_s, hi=15)
    return dataclasses.replace(inherited, mode=mode, percent=percent if mode in (SAMPLED, CAMPAIGN) else 100.0,
                               first_day=first, last_day=last, refuse_digit=digit, consent_wait_s=wait,
                               consent_prompt=CONSENT_PROMPT)


def _percent(ctx: Context, node: YNode | None, path: str, default: float) -> float:
    if node is None:
        return default
    value = node.value if isinstance(node, YScalar) else None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1])
        except ValueError:
            value = None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 100:
        ctx.reader.error(node.line, path, f'"{getattr(node, "raw", "")}" is not a share of calls: a number above 0 '
                                          "and at most 100, e.g. 10 or 12.5")
        return default
    return float(value)


def _day(ctx: Context, node: YNode | None, path: str):
    if node is None:
        return None
    value = ctx.reader.date_or_datetime(node, path)
    if value is not None and not hasattr(value, "hour"):
        return value
    if value is not None:
        ctx.reader.error(node.line, path, "is a day, without a time: e.g. 2026-03-02")
    return None


def _emails(ctx: Context, node: YNode | None) -> tuple[str, ...]:
    r = ctx.reader
    if node is None:
        return ()
    items = [(n, f"recording.voicemail_email[{i}]") for i, n in enumerate(node.items)] if isinstance(node, YSeq) \
        else [(node, "recording.voicemail_email")]
    if len(items) > MAX_RECIPIENTS:
        r.error(node.line, "recording.voicemail_email", f"lists {len(items)} addresses; at most {MAX_RECIPIENTS}")
        return ()
    out: list[str] = []
    for n, path in items:
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
