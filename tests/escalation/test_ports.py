"""The escalation reaches the store and the controller only through its ports, and the real
implementations match them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from callrouter.controller.alerts import AlertCalls
from callrouter.escalation import ports
from callrouter.store.escalations import EscalationRepository

PACKAGE = Path(__file__).resolve().parents[2] / "callrouter"
ESCALATION = PACKAGE / "escalation"
ALERTS = sorted((PACKAGE / "controller").glob("alert*.py"))


def protocol_methods(protocol: type) -> list[str]:
    return sorted({name for klass in protocol.__mro__ if klass.__module__ == ports.__name__
                   for name, value in vars(klass).items() if inspect.isfunction(value) and not name.startswith("_")})


def parameters(f) -> list[tuple[str, object, object]]:
    """Names, kinds and defaults (annotations are written in each module's own words)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


@pytest.mark.parametrize("protocol, real", [(ports.ChainStore, EscalationRepository),
                                            (ports.AckStore, EscalationRepository),
                                            (ports.AlertPlacer, AlertCalls)])
def test_the_real_adapters_have_the_ports_signatures(protocol, real):
    methods = protocol_methods(protocol)
    assert methods
    for name in methods:
        assert parameters(getattr(real, name)) == parameters(getattr(protocol, name)), name


SHARED = ("callrouter.domain", "callrouter.ports", "callrouter.auth", "callrouter.metrics", "callrouter.prompts")
CONTROLLER_MAY_USE = (*SHARED, "callrouter.controller", "callrouter.media.protocol", "callrouter.events.topics",
                      "callrouter.events.card")


def is_module(name: str) -> bool:
    where = PACKAGE.parent.joinpath(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def imported(path: Path) -> set[str]:
    """The callrouter modules `path` imports, at the top or inside a function: `from x import y`
    is x.y when y is a module, else x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path.name}: a relative import"
            found |= {f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                      for a in node.names}
    return {m for m in found if m.startswith("callrouter.")}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return name.endswith(".settings") or any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_escalation_module_imports_the_store_or_the_controller_and_alert_calls_not_the_escalation():
    crossing = [f"{p.name} -> {m}" for p in sorted(ESCALATION.glob("*.py")) for m in sorted(imported(p))
                if not allowed(m, (*SHARED, "callrouter.escalation"))]
    crossing += [f"controller/{p.name} -> {m}" for p in ALERTS for m in sorted(imported(p))
                 if not allowed(m, CONTROLLER_MAY_USE)]
    assert ALERTS and crossing == []


def test_the_escalation_modules_import_no_cycle_even_inside_functions():
    modules = {f"callrouter.escalation.{p.stem}": p for p in ESCALATION.glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in imported(path) if m in modules and m != name} for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m})) for m in graph[start])

    assert sorted(name for name in graph if reaches(name, name, {name})) == []


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_run_blocking_and_the_channel_error_have_one_home_each():
    homes = {name: sorted(p.name for p in [*ESCALATION.glob("*.py"), *ALERTS] if name in defined_names(p))
             for name in ("RunBlocking", "ChannelError", "ProviderId", "AlertRequest", "AlertNotPlaced")}
    assert homes == {"RunBlocking": [], "ChannelError": ["ports.py"], "ProviderId": ["ports.py"],
                     "AlertRequest": [], "AlertNotPlaced": []}  # RunBlocking: callrouter.ports


def test_times_come_from_the_clock_through_utc_from_clock():
    by_hand = [p.name for p in [*ESCALATION.glob("*.py"), *ALERTS, PACKAGE / "store" / "escalations.py"]
               if "fromtimestamp(" in p.read_text(encoding="utf-8")]
    assert by_hand == []


def assigned_attributes(tree: ast.AST) -> list[ast.Attribute]:
    out = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            out += [leaf for leaf in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(leaf, ast.Attribute)]
    return out


def is_self(node: ast.Attribute) -> bool:
    """The object being built: `self`, or `made` in a `__new__`."""
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "made")


def test_escalation_objects_are_complete_once_built():
    """What a constructor sets (a channel's alert calls, its store, an SMPP bind's inbound
    handlers...) is never set from outside afterwards: every dependency is passed at construction."""
    trees = {p.name: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(ESCALATION.glob("*.py"))}
    built = {leaf.attr for tree in trees.values() for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef) and node.name == "__init__"
             for leaf in assigned_attributes(node) if is_self(leaf)}
    later = [f"{name}:{leaf.lineno} {ast.unparse(leaf)}" for name, tree in trees.items()
             for leaf in assigned_attributes(tree) if not is_self(leaf) and leaf.attr in built]
    assert later == []
