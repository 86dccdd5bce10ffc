"""The decision core stays pure: standard library, holidays and zoneinfo only, no adapter."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parent.parent / "callrouter" / "domain"
ALLOWED_THIRD_PARTY = {"holidays"}
FORBIDDEN_STDLIB = {"socket", "subprocess", "threading", "asyncio", "sqlite3", "urllib", "http", "os", "time", "logging"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_imports_only_stdlib_holidays_and_itself():
    offenders = []
    for path in DOMAIN.glob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if name.startswith("callrouter.") and not name.startswith("callrouter.domain"):
                offenders.append(f"{path.name}: {name} (an adapter or outer layer)")
            elif top == "callrouter" or top in ALLOWED_THIRD_PARTY:
                continue
            elif top not in sys.stdlib_module_names:
                offenders.append(f"{path.name}: {name} (third-party)")
            elif top in FORBIDDEN_STDLIB:
                offenders.append(f"{path.name}: {name} (I/O or wall clock)")
    assert offenders == []


def test_the_check_catches_an_adapter_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from callrouter.store import models\nimport socket\n")
    assert imports_of(bad) == {"callrouter.store", "socket"}
