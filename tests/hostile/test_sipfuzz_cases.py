"""The fuzz campaign's messages on their own (no service): reproducible from the seed, each
mutator safe on any message, and the shares of a campaign adding up."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.devtools.sipfuzz import KINDS, MUTATORS, base_message, cases, mutated, shares
from callrouter.devtools.sipwire import Local, frames, header_values, status_of

LOCAL = Local("127.0.0.1", 40000, "UDP")


def test_the_same_seed_sends_the_same_messages_and_another_seed_others():
    first = [c.render(LOCAL, "127.0.0.1", 5060) for c in cases(7, "edge-trunk-udp", 0, 200)]
    again = [c.render(LOCAL, "127.0.0.1", 5060) for c in cases(7, "edge-trunk-udp", 0, 200)]
    other = [c.render(LOCAL, "127.0.0.1", 5060) for c in cases(8, "edge-trunk-udp", 0, 200)]
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) > 150


def test_a_burst_is_the_same_messages_as_the_same_indexes_of_a_longer_run():
    whole = cases(7, "worker-0-udp", 0, 300)
    assert cases(7, "worker-0-udp", 100, 50) == whole[100:150]


def test_every_kind_and_mutator_is_drawn_in_a_campaign():
    drawn = cases(4475, "edge-trunk-udp", 0, 1000)
    assert {c.kind for c in drawn} == set(KINDS)
    assert {m for c in drawn for m in c.mutators} == set(MUTATORS)


def test_the_base_messages_are_well_formed():
    import random

    for kind in KINDS:
        message = base_message(kind, LOCAL, "127.0.0.1", 5060, random.Random(1))
        head, _, body = message.partition(b"\r\n\r\n")
        assert message.startswith(kind.encode() + b" sip:")
        assert int(header_values(message, "content-length")[0]) == len(body)
        assert header_values(message, "call-id") and header_values(message, "via")


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), kind=st.sampled_from(KINDS),
       names=st.lists(st.sampled_from(sorted(MUTATORS)), min_size=1, max_size=4))
def test_any_chain_of_mutators_gives_a_datagram_never_an_error(seed, kind, names):
    import random

    message = mutated(kind, names, LOCAL, "127.0.0.1", 5060, random.Random(seed))
    assert 0 < len(message) <= 65000


def test_the_shares_of_a_campaign_add_up_to_its_count():
    names = ["edge-trunk-udp", "edge-trunk-tcp", "edge-outsider-udp", "worker-0-udp", "worker-1-udp"]
    for count in (1, 7, 3000, 20001):
        split = shares(count, names)
        assert sum(split.values()) == count and set(split) == set(names)


def test_a_tcp_stream_is_cut_into_messages_by_their_content_length():
    one = b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n"
    two = b"SIP/2.0 404 Not Found\r\nl: 4\r\n\r\nbody"
    buffer = bytearray(b"\r\n" + one + two + b"SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\npart")
    assert frames(buffer) == [one, two]
    assert bytes(buffer).startswith(b"SIP/2.0 200 OK") and [status_of(m) for m in (one, two)] == [100, 404]
