"""Settings of the forwarding watch (the `watch:` section of the daemon settings).

`enabled` is the kill switch: off, no watch call goes out, whatever the dialplans say (calls back
from the watch's numbers are still released, never queued). The calls present a number of the
secretariat's own range (`caller_number` and the `caller_range - 1` after it): that number, not
a name, is what survives an operator's forwarding and marks the call coming back
(docs/forwarding-watch.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


@dataclass(frozen=True)
class WatchSettings:
    enabled: bool = False
    caller_number: str | None = None      # the first number of the secretariat's range (+33...)
    caller_range: int = 1                 # how many consecutive numbers from caller_number
    display_name: str = "Test renvoi"     # shown with a per-call token where the network keeps names
    max_calls_per_day: int = 8            # per practice, retries included: the ceiling over the dialplans'
    max_in_flight: int = 4                # watch calls under way at once on this node
    release_code: int = 603               # how a call coming back is refused, before any answer
    catch_up_minutes: int = 10            # a slot missed by less (the service was starting) still runs
    tick_seconds: float = 15.0            # how often the schedule is read
    contact_email: tuple[str, ...] = ()   # the secretariat's contacts told of a failure (default:
    contact_sms: tuple[str, ...] = ()     # escalation.duty_contact)

    def problems(self) -> list[str]:
        out = []
        if self.enabled and self.caller_number is None:
            out.append("watch.caller_number: required when the watch is enabled (the first number of the "
                       "secretariat's range, presented on the watch calls)")
        if self.caller_number is not None and not _E164.match(self.caller_number):
            out.append(f"watch.caller_number: expected a number such as +33180000100, got {self.caller_number!r}")
        if not 1 <= self.caller_range <= 1000:
            out.append(f"watch.caller_range: expected 1 to 1000 numbers, got {self.caller_range}")
        elif self.caller_number is not None and _E164.match(self.caller_number):
            digits = self.caller_number[1:]
            if len(str(int(digits) + self.caller_range - 1)) > len(digits):
                out.append("watch.caller_range: runs past the last number of that length")
        if not 2 <= self.max_calls_per_day <= 48:
            out.append(f"watch.max_calls_per_day: expected 2 to 48, got {self.max_calls_per_day}")
        if not 1 <= self.max_in_flight <= 50:
            out.append(f"watch.max_in_flight: expected 1 to 50, got {self.max_in_flight}")
        if not 400 <= self.release_code <= 699:
            out.append(f"watch.release_code: expected a SIP failure code (400-699), got {self.release_code}")
        if not 1 <= self.tick_seconds <= 300:
            out.append("watch.tick_seconds: expected 1 to 300 seconds")
        if any(c in self.display_name for c in '"\\\r\n'):
            out.append("watch.display_name: no quotes, backslashes or line breaks")
        out += [f"watch.contact_sms: expected numbers such as +33612345678, got {n!r}"
                for n in self.contact_sms if not _E164.match(n)]
        out += [f"watch.contact_email: expected e-mail addresses, got {e!r}"
                for e in self.contact_email if not _EMAIL.match(e)]
        return out
