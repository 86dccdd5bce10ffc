"""The web parses, calls and serialises: it reaches the store only through callrouter.web.ports,
never imports callrouter.store (or another adapter), and opens no transaction itself."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "callrouter" / "web"
OTHER_ADAPTERS = ("store", "media", "sip", "events", "escalation")


def crossings(web: Path = WEB) -> list[str]:
    """Every import of another adapter and every `.transaction(` call in the
    web's modules, at the top or inside a function."""
    found = []
    for path in sorted(web.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "callrouter" and len(parts) > 1 and parts[1] in OTHER_ADAPTERS:
                    found.append(f"{path.name}: imports {name}")
            if isinstance(node, ast.Attribute) and node.attr == "transaction":
                found.append(f"{path.name}:{node.lineno}: opens a transaction")
    return found


def test_the_web_reaches_the_store_only_through_its_ports():
    assert crossings() == []


def test_the_check_sees_an_import_inside_a_function_and_a_transaction(tmp_path):
    (tmp_path / "bad.py").write_text(
        "def f(db):\n    from callrouter.store.audit import append\n    with db.transaction() as s:\n"
        "        append(s)\n")
    assert crossings(tmp_path) == ["bad.py: imports callrouter.store.audit", "bad.py:3: opens a transaction"]
