"""The live set of dialplans: reloaded on demand, a broken file never replaces good rules.

On reload every file is read again. A file that now fails keeps its last good version live and
its errors are reported (the daemon logs them and the admin API shows them); a file that was
removed takes its practice away; a new file claiming a number already served is refused.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from callrouter.dialplan.errors import DialplanError
from callrouter.dialplan.loader import LoadResult, _cross_checks, dialplan_files, load_paths
from callrouter.dialplan.rotafeed import cache_reader
from callrouter.domain.model import Dialplan
from callrouter.domain.routing import Router
from callrouter.ports import DialplanStatus
from callrouter.prompts import Catalogue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadReport:
    loaded: tuple[str, ...]  # practices whose rules changed or appeared
    kept: tuple[str, ...]  # practices kept on their last good rules because their file is broken
    removed: tuple[str, ...]
    errors: tuple[DialplanError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Entry:
    dialplan: Dialplan
    loaded_at: dt.datetime
    error: str | None = None


class DialplanRegistry:
    """Holds the Router in force; `router` is replaced whole, so readers never see half a reload."""

    def __init__(self, paths: Iterable[str | Path], catalogue_loader: Callable[[], Catalogue],
                 now: Callable[[], dt.datetime], feed_cache: Path | None = None):
        """`feed_cache`: the directory where the daemon keeps the on-call feeds it fetches."""
        self.paths = [Path(p) for p in paths]
        self.feed_cache = Path(feed_cache) if feed_cache is not None else None
        self._catalogue_loader = catalogue_loader
        self._now = now
        self._by_source: dict[str, _Entry] = {}
        self._file_errors: dict[str, str] = {}  # source -> first error, for files with no good version
        self._snapshot: dict[str, tuple[int, int]] = {}
        self.router = Router([])

    def reload(self) -> ReloadReport:
        now = self._now()
        self._snapshot = self._stat()
        result = load_paths(self.paths, self._catalogue_loader(), cache_reader(self.feed_cache))
        errors_by_file: dict[str, list[DialplanError]] = {}
        for e in result.errors:  # an error in a rota feed counts against the dialplan reading it
            errors_by_file.setdefault(result.owners.get(e.file, e.file), []).append(e)
        previous = self._by_source
        present = set(result.files)
        kept = [previous[s].dialplan for s in result.failed_files if s in previous]
        merged = LoadResult(dialplans=[*kept, *result.dialplans])
        _cross_checks(merged)  # kept (old, known good) rules come first and win a conflict
        for e in merged.errors:
            errors_by_file.setdefault(e.file, []).append(e)
        new: dict[str, _Entry] = {}
        loaded, kept_ids = [], []
        for d in merged.dialplans:
            first_error = _first(errors_by_file.get(d.source))
            old = previous.get(d.source)
            if d.source in result.failed_files:  # broken file: its last good rules stay live
                new[d.source] = _Entry(d, old.loaded_at, first_error)
                kept_ids.append(d.practice)
            elif old is not None and old.dialplan.version == d.version:
                new[d.source] = _Entry(d, old.loaded_at, first_error)
            else:
                new[d.source] = _Entry(d, now, first_error)
                loaded.append(d.practice)
        removed = [e.dialplan.practice for s, e in previous.items() if s not in present]
        self._by_source = new
        self._file_errors = {f: _first(errs) for f, errs in errors_by_file.items() if f not in new}
        self.router = Router(e.dialplan for e in new.values())
        all_errors = tuple(sorted(set(result.errors) | set(merged.errors)))
        for e in all_errors:
            logger.error("dialplan refused: %s", e)
        for practice in loaded:
            logger.info("dialplan loaded: %s version %s", practice, self.router.dialplans[practice].version)
        for practice in kept_ids:
            logger.warning("dialplan %s keeps its last good rules", practice)
        return ReloadReport(tuple(loaded), tuple(sorted(set(kept_ids))), tuple(removed), all_errors)

    def changed_on_disk(self) -> bool:
        """Whether any dialplan file, rota feed file (*.ics next to the dialplans) or cached copy
        of a fetched feed appeared, vanished or changed since the last reload."""
        return self._stat() != self._snapshot

    def _stat(self) -> dict[str, tuple[int, int]]:
        out = {}
        feeds = [d if d.is_dir() else d.parent for d in self.paths]
        if self.feed_cache is not None:
            feeds.append(self.feed_cache)
        watched = dialplan_files(self.paths) + [f for d in dict.fromkeys(feeds) if d.is_dir()
                                                for f in sorted(d.glob("*.ics"))]
        for p in watched:
            try:
                st = p.stat()
            except OSError:
                continue
            out[str(p)] = (st.st_mtime_ns, st.st_size)
        return out

    @property
    def dialplans(self) -> Mapping[str, Dialplan]:
        return self.router.dialplans

    def dialplan_status(self) -> Mapping[str, DialplanStatus]:
        out = {
            e.dialplan.practice: DialplanStatus(e.dialplan.practice, e.dialplan.version, source, e.loaded_at, e.error)
            for source, e in self._by_source.items()
        }
        for source, error in self._file_errors.items():
            key = Path(source).stem
            out.setdefault(key, DialplanStatus(key, None, source, None, error))
        return out


def _first(errors: list[DialplanError] | None) -> str | None:
    return str(errors[0]) if errors else None
