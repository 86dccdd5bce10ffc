"""The worker RPC: every message survives a round trip; bad lines are refused with a clear reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callrouter.media import protocol as p
from callrouter.media.slot_events import SlotsHeld

SAMPLES = [
    p.Answer(leg="w0-1-1"), p.Answer(leg="w0-1-1", code=183),
    p.Play(leg="l", path="/srv/prompts/welcome.wav", loop=True), p.StopPlayback(leg="l"),
    p.Record(leg="l", path="/var/vm/1.wav", max_seconds=60, silence_seconds=3, stop_digits="#*"),
    p.Dial(leg="sec-1", uri="sip:alice@127.0.0.1:5080", display_name="Cabinet Exemple",
           from_user="+33142000001", headers={"X-Callrouter-Call": "c1"}, timeout_seconds=30),
    p.Bridge(leg="a", other="b"), p.Unbridge(leg="a", other="b"),
    p.Transfer(leg="a", uri="sip:15@127.0.0.1"), p.Hangup(leg="a", code=486),
    p.Ready(worker="w0", sip_port=5070, cap=4, pid=123),
    p.IncomingCall(leg="w0-1-1", sip_call_id="abc", from_uri="<sip:+33612345678@x>", to_uri="<sip:+331@y>",
                   number="+331", caller="+33612345678", caller_name="Émilie", headers={"Diversion": "<sip:1@x>"}),
    p.Digit(leg="l", digit="#", method="info"), p.PlaybackFinished(leg="l", path="/p.wav"),
    p.LegState(leg="l", state="ringing"), p.LegEnded(leg="l", code=487, reason="Request Terminated", by="local"),
    p.RecordingFinished(leg="l", path="/v.wav", duration=4.5, reason="digit"),
    p.Error(message="no live leg", command="play", leg="l"),
    p.RecordCall(leg="a", other="b", recording="rec-1", path="/s/a.wav", other_path="/s/b.wav", max_seconds=600),
    p.StopCallRecording(leg="a"),
    p.CallRecordingFinished(leg="rec-1", path="/s/a.wav", other_path="/s/b.wav", duration=12.5, reason="stopped"),
    p.RelayOpen(relay="r1", leg="a"), p.RelayConnect(relay="r1", port=20198), p.RelayClose(relay="r1"),
    p.RelayReady(relay="r1", port=20198), p.RelayEnded(relay="r1", reason="leg_ended"), p.Retire(),
    p.ReportLegs(), p.LegsReported(count=2),
    p.LegReport(leg="w0-1-1", sip_call_id="abc", peer="<sip:+33612345678@x>", outgoing=False, state="confirmed",
                bridged="sec-1", relays="", playing=""),
    SlotsHeld(held=1),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.type)
def test_round_trip(message):
    line = p.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decode = p.decode_command if message.type in p.COMMANDS else p.decode_event
    assert decode(line) == message


def test_every_message_type_has_a_sample():
    assert {m.type for m in SAMPLES} == set(p.COMMANDS) | set(p.EVENTS)


def test_commands_and_events_do_not_share_names():
    assert not set(p.COMMANDS) & set(p.EVENTS)


@pytest.mark.parametrize("line, reason", [
    (b"hello", "not JSON"),
    (b"[1]", "JSON object"),
    (b'{"type":"answer","leg":"x"}', "version None"),
    (b'{"v":2,"type":"answer","leg":"x"}', "version 2"),
    (b'{"v":1,"type":"dance","leg":"x"}', "unknown command type 'dance'"),
    (b'{"v":1,"type":"ready","worker":"w"}', "unknown command type 'ready'"),
    (b'{"v":1,"type":"answer"}', "missing field 'leg'"),
    (b'{"v":1,"type":"answer","leg":"x","colour":"red"}', "unknown field(s) colour"),
    (b'{"v":1,"type":"answer","leg":3}', "field 'leg' must be str"),
    (b'{"v":1,"type":"hangup","leg":"x","code":true}', "field 'code' must be int"),
    (b'{"v":1,"type":"hangup","leg":"x","code":200}', "400-699"),
    (b'{"v":1,"type":"answer","leg":"x","code":302}', "180, 183 or 200"),
    (b'{"v":1,"type":"play","leg":"x","path":"/a","loop":"yes"}', "field 'loop' must be bool"),
    (b'{"v":1,"type":"dial","leg":"x","uri":"http://evil"}', "sip: or sips:"),
    (b'{"v":1,"type":"dial","leg":"x","uri":"sip:a@b","headers":{"X-A":"1\\r\\nVia: x"}}', "bad header"),
    (b'{"v":1,"type":"dial","leg":"x","uri":"sip:a@b","headers":{"X-A":1}}', "object of strings"),
    (b'{"v":1,"type":"dial","leg":"x","uri":"sip:a@b","display_name":"a\\"b"}', "display_name"),
    (b'{"v":1,"type":"record","leg":"x","path":"/a","max_seconds":0}', "max_seconds"),
    (b'{"v":1,"type":"record","leg":"x","path":"/a","stop_digits":"#x"}', "non-DTMF"),
    (b'{"v":1,"type":"bridge","leg":"x","other":"x"}', "itself"),
    (b'{"v":1,"type":"record","leg":"x","path":"/a","max_seconds":NaN}', "must be float"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_malformed_commands_are_refused_with_the_reason(line, reason):
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_command(line)
    assert reason in str(caught.value)


def test_bad_event_values_are_refused():
    with pytest.raises(p.ProtocolError, match="not a DTMF digit"):
        p.decode_event(b'{"v":1,"type":"digit","leg":"x","digit":"x"}')
    with pytest.raises(p.ProtocolError, match="state must be"):
        p.decode_event(b'{"v":1,"type":"leg_state","leg":"x","state":"dancing"}')


def test_int_is_accepted_where_a_float_is_expected():
    cmd = p.decode_command(b'{"v":1,"type":"record","leg":"x","path":"/a","max_seconds":10}')
    assert cmd.max_seconds == 10.0 and isinstance(cmd.max_seconds, float)


def test_line_reader_splits_joins_and_drops_overlong_lines():
    reader = p.LineReader(max_bytes=20)
    assert reader.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert reader.feed(b":2}\r\n\n") == [b'{"b":2}']
    out = reader.feed(b"x" * 50)
    assert len(out) == 1 and isinstance(out[0], p.ProtocolError)
    assert reader.feed(b"y" * 50) == []          # still the same long line: reported once
    assert reader.feed(b"zz\nok\n") == [b"ok"]   # its tail is dropped, the next line is read


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=8),
       st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=8))
def test_the_reader_gives_the_same_lines_however_the_stream_is_cut(lines, cuts):
    """Whole lines one by one (the fast path) or the stream cut anywhere: the same lines out,
    an over-long one dropped alike."""
    stream = b"".join(line + b"\n" for line in lines)
    whole, cut = p.LineReader(max_bytes=30), p.LineReader(max_bytes=30)
    by_line = [item for line in lines for item in whole.feed(line + b"\n")]
    pieces, at, i = [], 0, 0
    while at < len(stream):
        pieces.append(stream[at:at + cuts[i % len(cuts)]])
        at, i = at + cuts[i % len(cuts)], i + 1
    by_piece = [item for piece in pieces for item in cut.feed(piece)]
    kind = lambda items: [x if isinstance(x, bytes) else "dropped" for x in items]  # noqa: E731
    assert kind(by_line) == kind(by_piece) == [line if len(line) <= 30 else "dropped" for line in lines
                                               if line.strip() or len(line) > 30]


@given(st.binary(max_size=300))
def test_the_reader_never_crashes_on_arbitrary_bytes(data):
    reader = p.LineReader()
    for item in reader.feed(data + b"\n"):
        if isinstance(item, bytes):
            try:
                p.decode_command(item)
                p.decode_event(item)
            except p.ProtocolError:
                pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=10))
def test_arbitrary_json_is_either_a_message_or_a_protocol_error(value):
    line = json.dumps(value)
    for decode in (p.decode_command, p.decode_event):
        try:
            decode(line)
        except p.ProtocolError:
            pass


def test_encode_refuses_an_oversized_message():
    with pytest.raises(p.ProtocolError, match="longer than"):
        p.encode(p.Error(message="x" * (p.MAX_LINE_BYTES + 1)))
