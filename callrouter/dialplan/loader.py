"""Load dialplan files: one practice per YAML file; all errors of all files reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from callrouter.dialplan import schema, yamlsrc
from callrouter.dialplan.errors import DialplanError, DialplanInvalid
from callrouter.dialplan.rotafeed import FeedReader
from callrouter.domain.model import Dialplan
from callrouter.prompts import Catalogue

MAX_FILE_BYTES = 1_000_000


@dataclass
class LoadResult:
    dialplans: list[Dialplan] = field(default_factory=list)
    errors: list[DialplanError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    failed_files: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)  # a rota feed with errors -> its dialplan file

    @property
    def ok(self) -> bool:
        return not self.errors


def dialplan_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named by the paths: files as given, directories searched (not recursively)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml") and x.is_file())
        else:
            out.append(p)
    return out


def load_text(content: bytes, source: str, known_prompts: frozenset[str] | None,
              feed_reader: FeedReader | None = None) -> tuple[Dialplan | None, list[DialplanError]]:
    if len(content) > MAX_FILE_BYTES:
        return None, [DialplanError(source, 1, "", f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return None, [DialplanError(source, line, "", "file is not UTF-8 text")]
    try:
        tree = yamlsrc.parse(text)
    except yamlsrc.YamlSyntaxError as exc:
        return None, [DialplanError(source, exc.line, "", exc.message)]
    if tree is None:
        return None, [DialplanError(source, 1, "", "file is empty")]
    return schema.build(tree, source, content, known_prompts, feed_reader)


def load_file(path: str | Path, catalogue: Catalogue | None = None) -> Dialplan:
    """One dialplan, or DialplanInvalid with all its errors."""
    result = load_paths([path], catalogue)
    if result.errors:
        raise DialplanInvalid(result.errors)
    return result.dialplans[0]


def load_paths(paths: Iterable[str | Path], catalogue: Catalogue | None = None,
               feed_reader: FeedReader | None = None) -> LoadResult:
    """Load every file; then the checks across files (a number or a practice id claimed twice).

    `feed_reader`: where on-call rotas published at a URL are read (the daemon's cache)."""
    known = catalogue.names() if catalogue is not None else None
    result = LoadResult()
    for path in dialplan_files(paths):
        source = str(path)
        result.files.append(source)
        try:
            content = path.read_bytes()
        except OSError as exc:
            result.errors.append(DialplanError(source, 0, "", f"cannot read: {exc.strerror or exc}"))
            result.failed_files.add(source)
            continue
        dialplan, errors = load_text(content, source, known, feed_reader)
        if errors:
            result.errors += errors
            result.failed_files.add(source)
            result.owners.update({e.file: source for e in errors if e.file != source})
        elif dialplan is not None:
            result.dialplans.append(dialplan)
    _cross_checks(result)
    return result


def _cross_checks(result: LoadResult) -> None:
    by_practice: dict[str, Dialplan] = {}
    by_number: dict[str, Dialplan] = {}
    for d in result.dialplans:
        other = by_practice.get(d.practice)
        if other is not None:
            result.errors.append(DialplanError(d.source, 1, "practice",
                                               f'practice id "{d.practice}" is already used by {other.source}'))
            result.failed_files.add(d.source)
            continue
        by_practice[d.practice] = d
        for number in d.number_sites:
            owner = by_number.get(number)
            if owner is not None and owner is not d:
                result.errors.append(DialplanError(
                    d.source, _number_line(d, number), "numbers",
                    f"number {number} is also claimed by practice \"{owner.practice}\" ({owner.source}); "
                    f"a number can reach only one practice"))
                result.failed_files.add(d.source)
            else:
                by_number[number] = d
    result.dialplans = [d for d in result.dialplans if d.source not in result.failed_files]


def _number_line(d: Dialplan, number: str) -> int:
    """Line of a number in its file, found again in the text (the model keeps no lines)."""
    try:
        lines = Path(d.source).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    digits = number.lstrip("+")
    for i, line in enumerate(lines, 1):
        if digits in line.replace(" ", "").replace(".", ""):
            return i
    return 1
