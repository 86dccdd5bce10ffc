"""The dialplan's `kpis` section: the practice's own parameters of the indicators it reviews
(../shared/KPIS.md, docs/dialplan.md: kpis), when it agreed other values with its secretariat.

```yaml
kpis:
  short_abandon: 5s      # a caller hanging up this soon after entering the queue is left out of the rates
  sl_threshold: 30s      # answered within this counts in the service level
  sl_target: 80%         # the service level the practice expects (wallboard gauge, alert rule)
```
"""

from __future__ import annotations

from callrouter.dialplan.context import Context
from callrouter.dialplan.yamlsrc import YNode, YScalar
from callrouter.domain.kpis import KpiParams

KEYS = ("short_abandon", "sl_threshold", "sl_target")
MAX_SHORT_ABANDON_S = 60.0
MAX_SL_THRESHOLD_S = 600.0


def read_kpis(ctx: Context, node: YNode | None) -> KpiParams:
    r = ctx.reader
    default = KpiParams()
    m = r.mapping(node, "kpis", KEYS)
    if m is None:
        return default
    short = r.duration(m.get("short_abandon"), "kpis.short_abandon", default.short_abandon_s, hi=MAX_SHORT_ABANDON_S)
    threshold = r.duration(m.get("sl_threshold"), "kpis.sl_threshold", default.sl_threshold_s, hi=MAX_SL_THRESHOLD_S)
    if "sl_threshold" in m.items and threshold <= 0:
        r.error(m.items["sl_threshold"].line, "kpis.sl_threshold", "must be longer than 0s")
        threshold = default.sl_threshold_s
    target = _target(ctx, m.get("sl_target"), default.sl_target)
    return KpiParams(short_abandon_s=short, sl_threshold_s=threshold, sl_target=target)


def _target(ctx: Context, node: YNode | None, default: float) -> float:
    """A share: 80% or 0.8, strictly between 0 and 1 (100%: every call answered at once, never met)."""
    r = ctx.reader
    if node is None:
        return default
    value = node.value if isinstance(node, YScalar) else None
    share: float | None = None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1].replace(",", ".")) / 100
        except ValueError:
            share = None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        share = float(value)
    if share is None:
        r.error(node.line, "kpis.sl_target", f'"{getattr(node, "raw", value)}" is not a share; write e.g. 80% or 0.8')
        return default
    if not 0 < share < 1:
        r.error(node.line, "kpis.sl_target", f"must be between 0% and 100% (excluded), got {share:.0%}")
        return default
    return share
