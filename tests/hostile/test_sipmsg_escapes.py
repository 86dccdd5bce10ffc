"""The dialled number a worker reports, read from URIs written with %-escapes (RFC 3261 19.1.4:
sip:%2B33...@ is the same URI as sip:+33...@), as RFC 4475's escaping messages write them."""

from __future__ import annotations

import pytest

from callrouter.media.sipmsg import summarise_invite, uri_user


@pytest.mark.parametrize("uri, user", [
    ("sip:%2B33100000077@127.0.0.1", "+33100000077"),
    ("<sip:%2b3310000%30077@127.0.0.1;user=phone>", "+33100000077"),
    ("tel:%2B33100000077;phone-context=+33", "+33100000077"),
    ("sip:+33100000077@127.0.0.1", "+33100000077"),
    ("sip:avant-%00-apres@127.0.0.1", "avant- -apres"),  # an escaped control never reaches the controller
    ("sip:ligne%0Asuivante@h", "ligne suivante"),
    ("sip:%E9t%E9@h", "\ufffdt\ufffd"),  # an escaped byte that is not UTF-8
    ("sip:100%25@h", "100%"),
    ("sip:%zz@h", "%zz"),  # not an escape: kept as it is
])
def test_the_user_part_is_unescaped_and_safe(uri, user):
    assert uri_user(uri) == user


def test_an_escaped_invite_reports_the_practices_number():
    text = ("INVITE sip:%2B33100000077@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
            "From: <sip:%2B33612345678@127.0.0.1>;tag=1\r\nTo: <sip:%2B33100000077@127.0.0.1>\r\n"
            "Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    summary = summarise_invite(text)
    assert (summary.number, summary.caller) == ("+33100000077", "+33612345678")
