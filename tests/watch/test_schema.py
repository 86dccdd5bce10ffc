"""The dialplan's `watch` section: read into a WatchSpec, off when absent, every mistake refused with
its file, line and key."""

from __future__ import annotations

from callrouter.domain.watch_spec import WatchedNumber, WatchWindow
from tests.factories import dialplan_text, load_errors, load_one

SITES = """\
sites:
  ville:
    name: Cabinet de la ville
    address: 1 rue de la Paix, Paris
    numbers: ["+33100000002"]
"""


def watch(text: str, extra: str = "") -> str:
    return dialplan_text(extra=extra + "watch:\n" + "".join(f"  {line}\n" for line in text.splitlines()))


def test_a_practice_without_the_section_has_no_watch(tmp_path):
    assert load_one(tmp_path, dialplan_text()).watch is None


def test_watch_off_is_no_watch(tmp_path):
    assert load_one(tmp_path, dialplan_text(extra="watch: off\n")).watch is None


def test_the_section_read_with_its_defaults(tmp_path):
    spec = load_one(tmp_path, watch('forwarding: closed\nat: "03:10"', extra=SITES)).watch
    assert spec.forwarding == "closed"
    assert spec.windows == (WatchWindow(190, 205, tuple(range(7))),)  # a time alone: 15 minutes from it
    # Every number of the practice, each expected back on itself, with its site's calendar.
    assert spec.numbers == (WatchedNumber("+33100000001", "+33100000001", None),
                            WatchedNumber("+33100000002", "+33100000002", "ville"))
    assert (spec.timeout_s, spec.retry_after_s, spec.max_calls_per_day) == (30.0, 300.0, 4)
    assert (spec.emails, spec.sms) == ((), ())


def test_every_key_read(tmp_path):
    spec = load_one(tmp_path, watch(
        'forwarding: no_answer\nat: ["12:30-13:30", "22:00-24:00"]\nevery: 6h\ndays: sat-sun\n'
        'numbers: [{call: "+33142000001", returns_on: "+33100000001"}]\ntimeout: 75s\nretry_after: 10m\n'
        'max_calls_per_day: 6\ncontacts: {email: [cab@example.fr, dr@example.fr], sms: "+33612345678"}')).watch
    weekend = (5, 6)
    assert spec.windows == (WatchWindow(750, 810, weekend), WatchWindow(1320, 1440, weekend),
                            WatchWindow(0, 360, weekend), WatchWindow(360, 720, weekend),
                            WatchWindow(720, 1080, weekend), WatchWindow(1080, 1440, weekend))
    assert spec.numbers == (WatchedNumber("+33142000001", "+33100000001", None),)
    assert (spec.timeout_s, spec.retry_after_s, spec.max_calls_per_day) == (75.0, 600.0, 6)
    assert spec.emails == ("cab@example.fr", "dr@example.fr") and spec.sms == ("+33612345678",)


def test_no_answer_forwarding_waits_longer_by_default(tmp_path):
    assert load_one(tmp_path, watch('forwarding: no_answer\nat: "03:00"')).watch.timeout_s == 60.0


def messages(errors) -> list[tuple[int, str, str]]:
    return [(e.line, e.path, e.message) for e in errors]


def test_mistakes_are_refused_with_their_line_and_key(tmp_path):
    text = watch('forwarding: closd\nat: ["25:00", "22:00-01:00"]\nevery: 5m\n'
                 'numbers: ["+33100000009", {call: "+33142000001"}]\ntimeout: 2s\nretry_after: 2s\n'
                 'max_calls_per_day: 1\ncontacts: {email: [nope], sms: ["0612"]}\nbogus: 1')
    errors = load_errors(tmp_path, text)
    lines = text.splitlines()
    at = {e.path: e for e in errors}

    def line_of(word):
        return next(i for i, line in enumerate(lines, 1) if word in line)

    assert at["watch.forwarding"].message == '"closd" is not one of always, closed, no_answer (did you mean "closed"?)'
    assert at["watch.forwarding"].line == line_of("closd")
    assert at["watch.at[0]"].message == '"25:00" is not a valid time of day'
    assert "crosses midnight" in at["watch.at[1]"].message
    assert "at least 15m" in at["watch.every"].message
    assert "is not a number of this practice" in at["watch.numbers[0]"].message
    assert at["watch.numbers[0]"].line == line_of("+33100000009")
    assert at["watch.numbers[1]"].message == 'missing required key "returns_on"'
    assert "at least 5s" in at["watch.timeout"].message
    assert "at least 5s" in at["watch.retry_after"].message
    assert at["watch.max_calls_per_day"].message == "must be between 2 and 48, got 1"
    assert "not an e-mail address" in at["watch.contacts.email[0]"].message
    assert "international form" in at["watch.contacts.sms[0]"].message
    assert at["watch.bogus"].line == line_of("bogus")
    assert all(e.file.endswith("practice.yaml") for e in errors)


def test_a_watch_needs_times_and_a_forwarding_mode(tmp_path):
    errors = messages(load_errors(tmp_path, watch("numbers: [\"+33100000001\"]")))
    assert any(path == "watch" and 'missing required key "forwarding"' in m for _, path, m in errors)
    assert any(path == "watch" and 'neither "at" nor "every"' in m for _, path, m in errors)


def test_a_number_watched_twice_is_refused(tmp_path):
    errors = messages(load_errors(tmp_path, watch('forwarding: always\nat: "03:00"\n'
                                                  'numbers: ["+33100000001", "+33100000001"]')))
    assert [(path, m) for _, path, m in errors] == [("watch.numbers[1]", "+33100000001 is watched twice")]
