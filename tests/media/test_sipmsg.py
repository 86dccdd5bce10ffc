"""What the worker reports about an INVITE: numbers, caller name, selected headers; never a crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callrouter.media.sipmsg import display_name, summarise_invite, uri_user

INVITE = (
    "INVITE sip:+33142000001@127.0.0.1:5070;transport=udp SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    'f: "Dupont, Jean" <sip:+33612345678@trunk.example;user=phone>;tag=1\r\n'
    "t: <sip:+33142000001@127.0.0.1>\r\n"
    "i: abc@host\r\n"
    "Diversion: <sip:+33142000009@trunk.example>;reason=unconditional\r\n"
    "X-Trunk: orange\r\n"
    "  continued\r\n"
    "Subject: not reported\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_summary_of_a_forwarded_invite():
    s = summarise_invite(INVITE)
    assert s.number == "+33142000001" and s.caller == "+33612345678"
    assert s.caller_name == "Dupont, Jean" and s.call_id == "abc@host"
    assert s.headers == {"Diversion": "<sip:+33142000009@trunk.example>;reason=unconditional",
                         "X-Trunk": "orange continued"}


def test_uri_user_and_display_name():
    assert uri_user("<sip:alice@example.org>") == "alice"
    assert uri_user("tel:+33142000001;phone-context=x") == "+33142000001"
    assert uri_user("<sip:example.org>") == ""
    assert display_name("Bob <sip:b@x>") == "Bob"
    assert display_name('"A \\"B\\"" <sip:b@x>') == 'A "B"'
    assert display_name("<sip:b@x>") == ""


def test_anonymous_and_garbage():
    s = summarise_invite('INVITE sip:123@h SIP/2.0\r\nFrom: "Anonymous" <sip:anonymous@anonymous.invalid>\r\n\r\n')
    assert s.caller == "anonymous" and s.number == "123"
    assert summarise_invite("").number == ""


def test_c1_controls_and_unicode_line_separators_become_spaces():
    """U+0085 (NEL, from a %C2%85 escape or raw UTF-8) and U+2028 split a line for some log readers:
    neither reaches the caller's name, the number nor a reported header."""
    s = summarise_invite("INVITE sip:+3314%C2%852000001@h SIP/2.0\r\n"
                         'From: "Ren\u0085\u2028e" <sip:+3361234%C2%855678@h>;tag=1\r\n'
                         "X-Note: a\u0085b\u2029c\r\n\r\n")
    assert (s.number, s.caller, s.caller_name, s.headers["X-Note"]) == (
        "+3314 2000001", "+3361234 5678", "Ren  e", "a b c")


@given(st.text(max_size=500))
def test_never_raises(text):
    summarise_invite(text)


def test_bytes_that_are_not_utf8_become_replacement_characters_the_event_can_carry():
    """SWIG hands the worker undecodable bytes as lone surrogates: the summary holds U+FFFD instead,
    and the incoming_call event built from it encodes."""
    from callrouter.media import protocol as p

    raw = (b'INVITE sip:+33142000001@127.0.0.1 SIP/2.0\r\nFrom: "Ren\xe9\x01" <sip:+33612345678@h>;tag=1\r\n'
           b"To: <sip:+33142000001@h>\r\nCall-ID: a\xffb\r\nX-Note: caf\xc3\xa9 \xe9\r\n\r\n")
    summary = summarise_invite(raw.decode("utf-8", "surrogateescape"))
    assert (summary.caller_name, summary.call_id, summary.headers["X-Note"]) == (
        "Ren\ufffd", "a\ufffdb", "caf\u00e9 \ufffd")
    assert summary.caller == "+33612345678"
    p.encode(p.IncomingCall(leg="l", sip_call_id=summary.call_id, from_uri=summary.from_uri,
                            to_uri=summary.to_uri, number=summary.number, caller=summary.caller,
                            caller_name=summary.caller_name, headers=dict(summary.headers)))
