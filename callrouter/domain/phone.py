"""The numbers a practice may call back: French ones, normalised to E.164.

Accepted: national numbers ("0612345678", "06 12 34 56 78", "06.12.34.56.78"), E.164 ("+33612345678",
"+33 6 12 34 56 78", "+33 (0)6 12 34 56 78") and the international prefix ("0033612345678").
Refused: foreign numbers, short numbers (15, 112, 3646...), and premium-rate 089 numbers, which
would cost the practice.

The overseas departments share the national format (0 and nine digits) but have their own country
codes: 0262 12 34 56 (La Réunion) is +262262123456, not +33262123456. Practices there call these
numbers back, so they are mapped to the right code.
"""

from __future__ import annotations

import re

# The first three digits after the 0 -> the country code of the overseas department they belong to.
OVERSEAS: dict[str, str] = {
    "262": "262", "263": "262", "692": "262", "693": "262",  # La Réunion
    "269": "262", "639": "262",                              # Mayotte
    "590": "590", "690": "590", "691": "590",                # Guadeloupe, Saint-Martin, Saint-Barthélemy
    "594": "594", "694": "594",                              # Guyane
    "596": "596", "696": "596", "697": "596",                # Martinique
}
COUNTRY_CODES = ("33", "262", "590", "594", "596")
PREMIUM = "89"  # 089x xx xx xx: premium rate

_SEPARATORS = re.compile(r"[\s.\-/()]")
_DIGITS = re.compile(r"[0-9]+")
EXAMPLE = "such as 06 12 34 56 78 or +33612345678"


class InvalidNumber(ValueError):
    """A number that cannot be called back; the message says why, for the person who typed it."""


def normalise(raw: str) -> str:
    """`raw` as E.164 ("+33612345678"); raises InvalidNumber if it is not a French number we may call."""
    compact = _SEPARATORS.sub("", raw.replace("(0)", ""))
    if not compact:
        raise InvalidNumber(f"no phone number given; give a French number {EXAMPLE}")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        nsn = _national_part(compact[1:])
    elif _DIGITS.fullmatch(compact):
        if len(compact) < 10:
            raise InvalidNumber("short numbers (15, 112, 3646...) cannot be called back; "
                                f"give a full number {EXAMPLE}")
        if len(compact) > 10 or compact[0] != "0":
            raise InvalidNumber(f"not a French number; give ten digits {EXAMPLE}")
        nsn = compact[1:]
    else:
        raise InvalidNumber(f"not a phone number; give a French number {EXAMPLE}")
    if nsn[0] == "0":
        raise InvalidNumber(f"not a French number; give ten digits {EXAMPLE}")
    if nsn.startswith(PREMIUM):
        raise InvalidNumber("premium-rate numbers (089...) cannot be called back")
    return f"+{OVERSEAS.get(nsn[:3], '33')}{nsn}"


def _national_part(digits: str) -> str:
    """The nine digits after the country code of an international number (without its "+")."""
    if not _DIGITS.fullmatch(digits):
        raise InvalidNumber(f"not a phone number; give a French number {EXAMPLE}")
    code = next((c for c in COUNTRY_CODES if digits.startswith(c)), None)
    if code is None:
        raise InvalidNumber("only French numbers can be called back (+33, or an overseas "
                            "department's +262, +590, +594, +596)")
    nsn = digits[len(code):]
    if code == "33" and len(nsn) == 10 and nsn[0] == "0":
        nsn = nsn[1:]  # "+33 06...": the national 0 kept by mistake
    if len(nsn) != 9:
        raise InvalidNumber(f"a French number has nine digits after +{code}; give one {EXAMPLE}")
    if code != "33" and OVERSEAS.get(nsn[:3]) != code:
        raise InvalidNumber(f"+{code}{nsn[:3]}... is not a number of an overseas department")
    return nsn


def is_normalised(number: str) -> bool:
    """Is `number` already in the form `normalise` returns?"""
    try:
        return normalise(number) == number
    except InvalidNumber:
        return False


def national_digits(number: str | None) -> str:
    """The digits dialled from France to reach `number`, as read out digit by digit: a French
    number (metropolitan or overseas) in its ten-digit national form, +33612345678 -> 0612345678,
    +262692123456 -> 0692123456; any other number's digits as they are; "" for none."""
    if not number:
        return ""
    for code in COUNTRY_CODES:
        if number.startswith("+" + code) and len(number) - 1 - len(code) == 9:
            return "0" + number[1 + len(code):]
    return "".join(c for c in number if c.isdigit())
