"""One target under atheris (libFuzzer): `python -m fuzz.engine TARGET [libFuzzer arguments]`.

The project's modules are instrumented as they are imported (only callrouter's: the libraries'
own branches would drown its coverage), then libFuzzer runs the target on the corpus
directories given and on its mutations. fuzz/run.py starts it, bounded in time, and reads its output.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["callrouter"]):
    from fuzz.targets import MAX_LEN, TARGETS


def main(argv: list[str]) -> None:
    target = TARGETS[argv[1]]
    limit = MAX_LEN[argv[1]]

    def one_input(data: bytes) -> None:
        if len(data) <= limit:
            target(data)

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
