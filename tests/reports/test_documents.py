"""The PDF and HTML reports as a practice receives them: the PDF read back by poppler (pdftotext,
pdffonts) and rendered to PNG by pdftoppm (its first page kept in tests/artifacts/reports/ to look
at); the HTML page self-contained, with no script and nothing fetched from elsewhere."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from callrouter.reports.charts import DEBIAN_FONTS, font_file
from callrouter.reports.content import build_report
from callrouter.reports.render import render
from callrouter.store.kpi_queries import KpiQueries
from tests.reports import seed as S

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "reports"


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} (Debian poppler-utils) is not installed")
    return path


@pytest.fixture
def report(sqlite_db):
    S.seed(sqlite_db)
    records = KpiQueries(sqlite_db).records([S.PRACTICE], *S.WEEK.bounds(S.PARIS))
    return build_report(S.PRACTICE, S.NAME, S.PARIS, S.WEEK, records,
                        dt.datetime(2026, 3, 30, 5, 0, tzinfo=dt.timezone.utc))


def test_the_pdf_is_two_a4_pages_in_embedded_dejavu_with_its_accents(report, tmp_path):
    pdf = tmp_path / "rapport.pdf"
    pdf.write_bytes(render(report, "pdf").body)
    info = subprocess.run([poppler("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Pages:\s+2\b", info) and "595.44 x 841.68" in info  # A4 in points
    assert re.search(r"Title:\s+Rapport d.activité du télésecrétariat — Cabinet médical de l.Étang\n", info)
    fonts = subprocess.run([poppler("pdffonts"), str(pdf)], capture_output=True, text=True, check=True).stdout
    embedded = [line.split()[0].split("+")[-1] for line in fonts.splitlines()[2:]]
    assert embedded and all(name.startswith("DejaVuSans") for name in embedded)
    assert all(" yes yes " in line for line in fonts.splitlines()[2:])  # embedded, subset
    text = subprocess.run([poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for words in ("Cabinet médical de l'Étang", "Semaine 13, du lundi 23 mars au dimanche 29 mars 2026",
                  "Décrochés par une secrétaire", "Rappels effectués (patient joint)", "Hors horaires d'ouverture",
                  "Urgence vitale", "Appels reçus par jour de la semaine et par heure", "Délais d'acquittement"):
        assert words in text, words
    assert re.search(r"Niveau de service \(à 30 s\)\s+4/8 \(50 %\)", text.replace("\u202f", " ").replace("\u00a0", " "))


def test_the_pdf_renders_to_png_pages(report, tmp_path):
    pdf = tmp_path / "rapport.pdf"
    pdf.write_bytes(render(report, "pdf").body)
    subprocess.run([poppler("pdftoppm"), "-r", "110", "-png", str(pdf), str(tmp_path / "page")], check=True,
                   capture_output=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert [p.name for p in pages] == ["page-1.png", "page-2.png"]
    for page in pages:
        head = page.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert (width, height) == (910, 1286)  # A4 at 110 dpi
        assert page.stat().st_size > 30_000  # drawn, not blank
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for page in pages:
        shutil.copy(page, ARTIFACTS / f"weekly-report-{page.name}")


def test_the_text_is_set_in_debian_dejavu_when_installed():
    if DEBIAN_FONTS.joinpath("DejaVuSans.ttf").exists():
        assert font_file() == str(DEBIAN_FONTS / "DejaVuSans.ttf")
    else:
        assert font_file().endswith("DejaVuSans.ttf")


def test_the_html_page_is_self_contained_with_no_script(report):
    page = render(report, "html").body.decode()
    assert page.startswith('<!doctype html>\n<html lang="fr">')
    assert "<script" not in page.lower() and "<link" not in page.lower() and " src=" not in page
    assert "javascript:" not in page.lower() and "@import" not in page
    # Only XML namespaces name other addresses (no fetch): no url(...) to a server, no href to one.
    # Only the SVG namespaces name another address (no fetch): no url(...) to a server, no href to one.
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg",
                                                            "http://www.w3.org/1999/xlink"}
    assert page.count("<svg") == 5
    assert "Cabinet médical de l&#x27;Étang" in page and "4/8 (50\u202f%)" in page
    assert "Chaînes restées sans accusé de réception" in page
