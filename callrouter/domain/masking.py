"""Phone numbers masked inside free text: lines other programs log (Kamailio, pjsua) before they
reach our log. The masking is `mask_number`'s: country prefix and last two digits only."""

from __future__ import annotations

import re

from callrouter.domain.call import mask_number

# What a phone number looks like inside a log line or a SIP message dumped into one: international
# (+33 6 12 34 56 78, 0033612345678), French national with or without separators (06 12 34 56 78,
# 06.12.34.56.78), or any run of 8+ digits (612345678, a URI's user part after %2B). Ports, pids,
# times and IPv4 addresses do not take these shapes.
_NUMBER_IN_TEXT = re.compile(r"(?:\+|\b00)\d(?:[ .-]?\d){6,}|\b0\d(?:[ .-]?\d\d){4}\b|\d{8,}")


def mask_numbers_in(text: str) -> str:
    """`text` with every phone-number-looking digit run masked as `mask_number` does."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number(m.group()), text)
