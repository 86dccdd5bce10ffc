"""Callback numbers: French numbers in any usual spelling become E.164; others are refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callrouter.domain import phone
from callrouter.domain.phone import OVERSEAS, InvalidNumber, is_normalised, normalise

NORMALISED = re.compile(r"\+(33|262|590|594|596)[1-9][0-9]{8}")


@pytest.mark.parametrize("raw, expected", [
    ("0612345678", "+33612345678"),
    ("06 12 34 56 78", "+33612345678"),
    ("06.12.34.56.78", "+33612345678"),
    ("06-12-34-56-78", "+33612345678"),
    ("  0612345678 ", "+33612345678"),
    ("+33612345678", "+33612345678"),
    ("+33 6 12 34 56 78", "+33612345678"),
    ("+33 (0)6 12 34 56 78", "+33612345678"),
    ("+330612345678", "+33612345678"),
    ("0033612345678", "+33612345678"),
    ("0142000001", "+33142000001"),
    ("0912345678", "+33912345678"),
    ("0800123456", "+33800123456"),
    ("0262 12 34 56", "+262262123456"),   # La Réunion: its own country code
    ("0692 12 34 56", "+262692123456"),
    ("0639 12 34 56", "+262639123456"),   # Mayotte
    ("0590 12 34 56", "+590590123456"),   # Guadeloupe
    ("0694 12 34 56", "+594694123456"),   # Guyane
    ("0696 12 34 56", "+596696123456"),   # Martinique
    ("+262 692 12 34 56", "+262692123456"),
    ("+33262123456", "+262262123456"),    # an overseas number wrongly given with +33
])
def test_french_numbers_in_usual_spellings_become_e164(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw, why", [
    ("0892123456", "premium"),
    ("08 99 12 34 56", "premium"),
    ("+33899123456", "premium"),
    ("15", "short"),
    ("112", "short"),
    ("3646", "short"),
    ("061234567", "short"),
    ("06123456789", "ten digits"),
    ("6123456789", "ten digits"),
    ("0012345678", "only French"),  # 00: the international prefix
    ("+44 20 7946 0958", "only French"),
    ("+1 212 555 0100", "only French"),
    ("+3361234567", "nine digits"),
    ("+262 612 34 56 78", "overseas"),
    ("06 12 34 56 7a", "not a phone number"),
    ("+33 6 12 34 56 78 ext 2", "not a phone number"),
    ("", "no phone number"),
    ("   ", "no phone number"),
    ("٠٦١٢٣٤٥٦٧٨", "not a phone number"),  # Arabic-Indic digits are not dialable
])
def test_numbers_we_may_not_call_back_are_refused_with_a_reason(raw, why):
    with pytest.raises(InvalidNumber, match=why):
        normalise(raw)


nsn = st.from_regex(r"[1-79][0-9]{8}", fullmatch=True)


def spellings(national: str) -> list[str]:
    pairs = " ".join(national[i:i + 2] for i in range(0, 10, 2))
    return [national, pairs, pairs.replace(" ", "."), "+33" + national[1:], "0033" + national[1:],
            "+33 (0)" + national[1:]]


@given(nsn)
def test_every_spelling_of_a_number_gives_the_same_e164(digits):
    results = {normalise(s) for s in spellings("0" + digits)}
    assert len(results) == 1
    [number] = results
    assert NORMALISED.fullmatch(number)
    assert number.endswith(digits)
    assert number.startswith("+" + OVERSEAS.get(digits[:3], "33"))


@given(nsn)
def test_normalising_is_idempotent(digits):
    number = normalise("0" + digits)
    assert normalise(number) == number
    assert is_normalised(number)
    assert not is_normalised("0" + digits)


@given(st.from_regex(r"89[0-9]{7}", fullmatch=True))
def test_premium_numbers_are_always_refused(digits):
    for raw in ("0" + digits, "+33" + digits):
        with pytest.raises(InvalidNumber):
            normalise(raw)


@given(st.text(alphabet="0123456789", max_size=9))
def test_short_digit_strings_are_always_refused(raw):
    with pytest.raises(InvalidNumber):
        normalise(raw)


@given(st.text(max_size=30))
def test_any_text_is_refused_or_gives_a_callable_e164(raw):
    try:
        number = normalise(raw)
    except InvalidNumber:
        return
    assert NORMALISED.fullmatch(number)
    assert not number.startswith("+3389")


@pytest.mark.parametrize("number, digits", [
    ("+33612345678", "0612345678"),
    ("+262692123456", "0692123456"),  # overseas: the national form, as the caller typed it
    ("+590690123456", "0690123456"),
    ("+4915112345678", "4915112345678"),  # foreign: its digits
    ("+3361234", "3361234"),  # not nine digits after the code: its digits
    (None, ""),
    ("", ""),
])
def test_national_digits_read_out_and_dialled_back(number, digits):
    assert phone.national_digits(number) == digits


@given(st.sampled_from(["6", "7", "1", "2", "9"]), st.text("0123456789", min_size=8, max_size=8))
def test_national_digits_reverse_normalise(first, rest):
    national = "0" + first + rest
    if national.startswith("089"):
        return
    assert phone.national_digits(phone.normalise(national)) == national
