"""`callrouter report` on a seeded SQLite database and the dialplans of a settings file: the text
report on the standard output, a PDF written to a file and traced as an export, French refusals."""

from __future__ import annotations

import json

from callrouter.cli import main
from callrouter.store.audit import AuditLog
from callrouter.store.db import Database
from tests.reports import seed as S
from tests.reports.weekly_support import dialplans


def settings(tmp_path, db):
    dialplans(tmp_path / "dialplans")
    path = tmp_path / "callrouter.yaml"
    path.write_text(f"database_url: {db.url}\ndialplans: {tmp_path / 'dialplans'}\n", encoding="utf-8")
    return str(path)


def test_the_cli_prints_the_text_report_and_writes_an_audited_pdf(sqlite_db, tmp_path, capsys):
    S.seed(sqlite_db)
    config = settings(tmp_path, sqlite_db)
    assert main(["report", "--config", config, "--practice", S.PRACTICE, "--from", "2026-03-23"]) == 0
    out = capsys.readouterr().out
    assert "Semaine 13, du lundi 23 mars au dimanche 29 mars 2026" in out and "4/8 (50\u202f%)" in out
    assert AuditLog(sqlite_db).query(action="reports.export") == []  # read on a terminal: not an export
    target = tmp_path / "semaine-13.pdf"
    assert main(["report", "--config", config, "--practice", S.PRACTICE, "--from", "2026-03-23", "--to", "2026-03-29",
                 "--format", "pdf", "--output", str(target)]) == 0
    assert target.read_bytes().startswith(b"%PDF-")
    [entry] = AuditLog(Database.from_url(sqlite_db.url)).query(action="reports.export")
    assert entry.source == "cli" and json.loads(entry.details) == {
        "format": "pdf", "period": {"start": "2026-03-23", "end": "2026-03-30"}}


def test_the_cli_refuses_an_unknown_practice_and_a_backwards_period(sqlite_db, tmp_path, capsys):
    config = settings(tmp_path, sqlite_db)
    assert main(["report", "--config", config, "--practice", "nowhere"]) == 1
    assert "no valid dialplan for practice 'nowhere'" in capsys.readouterr().err
    assert main(["report", "--config", config, "--practice", S.PRACTICE, "--from", "2026-03-29",
                 "--to", "2026-03-23"]) == 2
    assert "the last day (2026-03-23) is before the first (2026-03-29)" in capsys.readouterr().err
