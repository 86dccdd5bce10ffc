"""`python -m callrouter.observe render [--check]`: write (or check) the rules and dashboards
generated from callrouter/observe/rules.py and dashboards.py into deploy/.
`python -m callrouter.observe prometheus`: a local Prometheus (callrouter.observe.local)."""

from __future__ import annotations

import sys
from pathlib import Path

from callrouter.observe import grafana, rules
from callrouter.observe.dashboards import DASHBOARDS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def generated() -> dict[Path, str]:
    """Each generated file under deploy/ and its content."""
    files = {DEPLOY / "prometheus" / "callrouter-rules.yml": rules.render()}
    for d in DASHBOARDS:
        files[DEPLOY / "grafana" / "dashboards" / f"{d.uid}.json"] = grafana.render(d)
    return files


def render(check: bool) -> int:
    stale = []
    for path, text in generated().items():
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(DEPLOY.parent)}")
    for path in stale:
        print(f"{path.relative_to(DEPLOY.parent)} is not what callrouter/observe generates: run "
              f"`python -m callrouter.observe render`", file=sys.stderr)
    return 1 if stale else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["render"]:
        return render(check="--check" in argv[1:])
    if argv[:1] == ["prometheus"]:
        from callrouter.observe.local import main as prometheus

        return prometheus(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
