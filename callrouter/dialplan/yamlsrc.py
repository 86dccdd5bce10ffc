"""YAML with line numbers: a small node tree that remembers where each value was written.

We read the composed node graph ourselves instead of PyYAML's constructors so that
- every mapping key and value keeps its line for error messages,
- duplicate keys are reported instead of silently overwritten,
- plain scalars keep YAML 1.2-like meanings: "08:00" stays a string (YAML 1.1 would read 480),
  "no"/"on" stay strings, "+33142000001" stays a string; dates stay strings for our own parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import yaml

_PLAIN = "!plain"


class _TagResolver(yaml.resolver.BaseResolver):
    """We resolve plain scalars ourselves (see `_scalar`); PyYAML's regex resolver costs half the parse."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


try:
    from yaml._yaml import CParser as _Parser  # libyaml, bundled with PyYAML's wheels
except ImportError:  # pragma: no cover
    _Parser = None
if _Parser is not None:
    class _Loader(_Parser, yaml.constructor.BaseConstructor, _TagResolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream):
            _Parser.__init__(self, stream)
            yaml.constructor.BaseConstructor.__init__(self)
            _TagResolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,  # type: ignore[no-redef]
                  yaml.constructor.BaseConstructor, _TagResolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.BaseConstructor.__init__(self)
            _TagResolver.__init__(self)

_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+\.[0-9]+$")
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


@dataclass
class YScalar:
    value: Any
    line: int
    raw: str = ""


@dataclass
class YSeq:
    items: list["YNode"]
    line: int


@dataclass
class YMap:
    items: dict[str, "YNode"]
    key_lines: dict[str, int]
    line: int
    duplicates: list[tuple[str, int]] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def get(self, key: str) -> "YNode | None":
        return self.items.get(key)


YNode = Union[YScalar, YSeq, YMap]


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def parse(text: str) -> YNode | None:
    """Parse one YAML document into a line-aware tree (None for an empty document)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(line, f"YAML syntax error: {problem}{context}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML syntax error: {exc}") from None
    if node is None:
        return None
    return _convert(node, depth=0, budget=[MAX_NODES])


MAX_NODES = 200_000  # aliases can expand a small file exponentially ("billion laughs")


def _convert(node: yaml.Node, depth: int, budget: list[int]) -> YNode:
    line = node.start_mark.line + 1
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlSyntaxError(line, "YAML document too large once aliases are expanded")
    if depth > 50:
        raise YamlSyntaxError(line, "YAML nested too deeply")
    if isinstance(node, yaml.ScalarNode):
        return YScalar(_scalar(node), line, node.value)
    if isinstance(node, yaml.SequenceNode):
        return YSeq([_convert(n, depth + 1, budget) for n in node.value], line)
    if isinstance(node, yaml.MappingNode):
        items: dict[str, YNode] = {}
        key_lines: dict[str, int] = {}
        duplicates: list[tuple[str, int]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSyntaxError(key_node.start_mark.line + 1, "a key must be a plain word, not a list or mapping")
            if key_node.value == "<<" and key_node.tag == _PLAIN:
                raise YamlSyntaxError(key_node.start_mark.line + 1, "merge keys (<<) are not supported")
            key = key_node.value
            kline = key_node.start_mark.line + 1
            if key in items:
                duplicates.append((key, kline))
            items[key] = _convert(value_node, depth + 1, budget)
            key_lines[key] = kline
        return YMap(items, key_lines, line, duplicates)
    raise YamlSyntaxError(line, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.tag != _PLAIN:  # quoted, block or explicitly tagged: text as written
        return text
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def plain(node: YNode | None) -> Any:
    """The plain Python value of a node (for free-form parts)."""
    if node is None:
        return None
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [plain(n) for n in node.items]
    return {k: plain(v) for k, v in node.items.items()}
