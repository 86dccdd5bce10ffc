"""The fuzz harness of `make fuzz` (fuzz/targets.py) kept working: every committed corpus input goes
through its target's entry function, as atheris would run it, and must pass (no exception, every
invariant of the target held). The long, coverage-guided run is `make fuzz`."""

from __future__ import annotations

import pytest

from fuzz.run import parse_output
from fuzz.targets import MAX_LEN, TARGETS, corpus_files


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_corpus_input_passes_its_target(target):
    files = corpus_files(target)
    assert len(files) >= 5, f"fuzz/corpus/{target}/ holds {len(files)} inputs"
    for path in files:
        data = path.read_bytes()
        assert len(data) <= MAX_LEN[target], path.name  # the fuzzer never runs longer inputs
        TARGETS[target](data)


def test_the_seed_dialplans_load_as_dialplans_so_the_fuzzer_starts_from_valid_files():
    from callrouter.dialplan.loader import load_text
    from fuzz import targets

    for path in corpus_files("dialplan"):
        if not path.name.startswith("regression-"):
            dialplan, errors = load_text(path.read_bytes(), targets.SOURCE, targets.PROMPTS, targets._feed)
            assert dialplan is not None and errors == [], (path.name, [str(e) for e in errors])


LIBFUZZER_CRASH = """\
INFO: Seed: 1234
#2\tINITED cov: 40 ft: 41 corp: 7/900b exec/s: 0 rss: 50Mb
#1024\tpulse  cov: 120 ft: 300 corp: 30/3Kb lim: 400 exec/s: 512 rss: 60Mb
 === Uncaught Python exception: ===
ValueError: year 0 is out of range
Traceback (most recent call last):
  File "fuzz/targets.py", line 70, in ical
ValueError: year 0 is out of range

==123== ERROR: libFuzzer: fuzz target exited
MS: 2 ChangeByte-CopyPart-; base unit: 0000
artifact_prefix='var/fuzz/crashes/ical/'; Test unit written to var/fuzz/crashes/ical/crash-abc
stat::number_of_executed_units: 1100
stat::new_units_added: 23
stat::peak_rss_mb: 61
"""


def test_libfuzzer_output_is_read_into_executions_coverage_and_the_crash():
    out = parse_output(LIBFUZZER_CRASH, 1)
    assert (out["execs"], out["cov"], out["ft"], out["corpus_units"]) == (1024, 120, 300, 30)
    assert out["stats"] == {"number_of_executed_units": 1100, "new_units_added": 23, "peak_rss_mb": 61}
    assert out["crash"]["kind"] == "exception"
    assert out["crash"]["artifact"] == "var/fuzz/crashes/ical/crash-abc"
    assert out["crash"]["exception"].splitlines()[0] == "ValueError: year 0 is out of range"
    assert "crash" not in parse_output("#10\tDONE   cov: 5 ft: 6 corp: 1/1b exec/s: 10 rss: 40Mb\n", 0)
