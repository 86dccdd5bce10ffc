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


# --- the house rules: sizes, cycles, adapters ------------------------------------------------------

PACKAGE = DOMAIN.parent
MAX_MODULE_LINES = 400
MAX_CLASS_METHODS = 30
ADAPTERS = {"media", "sip", "store", "events", "web", "escalation"}
# What any package may use: the pure core, the ports, the pure permission rules, the metrics
# registry, the prompt catalogue; and every package's settings model (config.py assembles them).
SHARED = {"domain", "ports", "auth", "metrics", "prompts"}
# Composition roots: they wire everything, so they may import anything.
ROOTS = {"app", "cli", "serve", "config", "devtools"}
# The application layer may also use the worker contract and the pure event builders.
CONTROLLER_ALLOWED = SHARED | {"media.protocol", "events.topics", "events.card"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py")) if "migrations" not in p.parts}


def module_imports(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Every callrouter module `path` imports, at the top or inside a function (a cycle hidden in a
    function is still a cycle), with `from x import y` resolved to x.y when y is a module."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{a.name}" for a in node.names} & modules
            found |= submodules or {base}
    return {m for m in found if m in modules and m != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = package_modules(package)
    return {name: module_imports(path, set(modules), package) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_offence(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when the layers allow it."""
    top_of = lambda m: m.split(".")[1] if m.count(".") else ""  # noqa: E731 - callrouter.<top>...
    src, dst = top_of(importer), top_of(imported)
    local = imported.removeprefix("callrouter.")
    if src == dst or src in ROOTS or dst in SHARED or not dst or imported.endswith(".settings"):
        return None
    if src == "controller":
        if local in CONTROLLER_ALLOWED or any(local.startswith(a + ".") for a in CONTROLLER_ALLOWED):
            return None
        return f"{importer} -> {imported}: the controller reaches adapters through ports"
    if src in ADAPTERS and dst in ADAPTERS:
        return f"{importer} -> {imported}: an adapter importing another adapter"
    if src in ADAPTERS and dst == "controller":
        return f"{importer} -> {imported}: an adapter importing the controller"
    if src in SHARED and dst not in SHARED:
        return f"{importer} -> {imported}: a shared module importing an outer layer"
    return None


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_adapters_reach_each_other_only_through_ports():
    offences = [why for importer, imported_set in import_graph().items() for imported in sorted(imported_set)
                if (why := layer_offence(importer, imported)) is not None]
    assert offences == []


def test_no_module_over_the_line_limit():
    long = {name: n for name, path in package_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_class_over_the_method_limit():
    big = {}
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
                if len(methods) > MAX_CLASS_METHODS:
                    big[f"{name}.{node.name}"] = len(methods)
    assert big == {}


def test_the_checks_catch_a_cycle_hidden_in_a_function_and_a_crossed_layer(tmp_path):
    pkg = tmp_path / "callrouter"
    (pkg / "web").mkdir(parents=True)
    (pkg / "store").mkdir()
    for init in (pkg, pkg / "web", pkg / "store"):
        (init / "__init__.py").write_text("")
    (pkg / "web" / "api.py").write_text("from callrouter.store import calls\n")
    (pkg / "store" / "calls.py").write_text("def f():\n    from ..web import api\n")
    graph = import_graph(pkg)
    assert graph["callrouter.web.api"] == {"callrouter.store.calls"}
    assert cycles(graph) == [["callrouter.store.calls", "callrouter.web.api"]]
    assert layer_offence("callrouter.web.api", "callrouter.store.calls").endswith("another adapter")
    assert layer_offence("callrouter.web.api", "callrouter.ports") is None
    assert layer_offence("callrouter.app", "callrouter.store.calls") is None
    assert layer_offence("callrouter.controller.calls", "callrouter.media.protocol") is None
    assert layer_offence("callrouter.controller.calls", "callrouter.store.calls") is not None
    assert layer_offence("callrouter.escalation.voice", "callrouter.controller.alerts") is not None
