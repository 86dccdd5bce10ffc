"""What the dialplan schema carries while it reads one file: the reader collecting errors, and the
names used (queues, menus, prompts...) to check once the whole file is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from callrouter.dialplan.fields import Reader
from callrouter.dialplan.rotafeed import FeedReader
from callrouter.dialplan.yamlsrc import YNode


@dataclass
class Ref:
    """A name used somewhere, checked once the whole file is read."""

    kind: str  # queue | menu | tier | prompt | practitioner | site
    name: str
    line: int
    path: str


@dataclass
class Context:
    reader: Reader
    refs: list[Ref] = field(default_factory=list)
    feed_reader: FeedReader | None = None
    feed_content: bytes = b""  # the rota feed read with the file: part of the rules' version

    def ref(self, kind: str, name: str | None, node: YNode | None, path: str) -> None:
        if name is not None and node is not None:
            self.refs.append(Ref(kind, name, node.line, path))


def prompt_ref(ctx: Context, node: YNode | None, path: str) -> str | None:
    name = ctx.reader.text(node, path)
    ctx.ref("prompt", name, node, path)
    return name


def ref_names(ctx: Context, node: YNode | None, path: str, kind: str) -> tuple[str, ...]:
    out = []
    for j, n in enumerate(ctx.reader.sequence(node, path)):
        name = ctx.reader.text(n, f"{path}[{j}]")
        ctx.ref(kind, name, n, f"{path}[{j}]")
        if name:
            out.append(name)
    return tuple(out)
