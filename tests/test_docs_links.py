"""The README and docs/ stay usable: every relative link resolves, the README stays a five-minute read, and the
README's results tables say what the committed reports say (a table copied by hand goes stale silently)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, protocol-relative


def links(text: str) -> list[str]:
    """Link targets of a Markdown text, outside code blocks and code spans."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def broken_links(page: Path) -> list[str]:
    """Every relative link target of ``page`` whose file or folder does not exist (anchors and queries stripped)."""
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and not EXTERNAL.match(target) and not (page.parent / path).exists():
            broken.append(target)
    return broken


def test_link_finder_sees_links_and_skips_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[a](real.md#part) ![img](pics/x.png) [ext](https://example.org/y) [top](#anchor)\n"
                    "`[code](no-such-1.md)`\n```\n[fenced](no-such-2.md)\n```\n[ref]: missing.md\n",
                    encoding="utf-8")
    (tmp_path / "real.md").write_text("", encoding="utf-8")
    assert links(page.read_text(encoding="utf-8")) == ["real.md#part", "pics/x.png", "https://example.org/y",
                                                        "#anchor", "missing.md"]
    assert broken_links(page) == ["pics/x.png", "missing.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == [], f"{page.relative_to(ROOT)}: links to files that do not exist"


def test_docs_exist_and_readme_indexes_them() -> None:
    docs = sorted((ROOT / "docs").glob("*.md"))
    assert docs, "docs/ holds no page"
    indexed = {Path(t.split("#")[0]).name for t in links(README.read_text(encoding="utf-8")) if t.startswith("docs/")}
    assert [d.name for d in docs if d.name not in indexed] == []


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; keep it to {MAX_README_LINES} (details go to docs/)"


# The README's two results tables: column header -> (method, column) of reports/results.csv, and
# column header -> effect of reports/mechanism.csv (configuration sam.backend=oracle).
RESULTS = {"input": ("baseline", "input_psnr"), "baseline": ("baseline", "psnr"), "control": ("control", "psnr"),
           "no-prior twin": ("no_prior", "psnr"), "distilled": ("spd_sgr", "psnr"),
           "distilled − control": ("spd_sgr", "d_psnr_control"), "IR₂ teacher": ("ir2", "psnr")}
MECHANISM = {"teacher with − without exact segments": "teacher_prior",
             "student with − without exact segments": "attributable", "student − control": "total"}


def readme_table(first_header: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the README table whose header row starts with ``first_header``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[:2] == ["task", first_header]:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return cells, rows
    raise AssertionError(f"README.md: no table whose header starts with 'task | {first_header}'")


def number(cell: str) -> tuple[float, int]:
    """A cell's value and its decimals (``-0.023`` -> (-0.023, 3)); the minus may be typographic."""
    text = cell.replace("−", "-").strip()
    return float(text), len(text.split(".")[1]) if "." in text else 0


def same(cell: str, value: float) -> bool:
    shown, decimals = number(cell)
    return f"{shown:.{decimals}f}" == f"{value:.{decimals}f}"


def test_readme_results_table_matches_results_csv() -> None:
    rows = {(r["task"], r["method"]): r for r in csv.DictReader((ROOT / "reports/results.csv").open())}
    header, table = readme_table("input")
    assert set(header[1:]) == set(RESULTS)
    wrong = [f"{row[0]} / {name}: README {cell}, results.csv {rows[(row[0], RESULTS[name][0])][RESULTS[name][1]]}"
             for row in table for name, cell in zip(header[1:], row[1:])
             if not same(cell, float(rows[(row[0], RESULTS[name][0])][RESULTS[name][1]]))]
    assert table and wrong == []


def test_readme_mechanism_table_matches_mechanism_csv() -> None:
    rows = {(r["config"], r["task"], r["effect"]): r for r in csv.DictReader((ROOT / "reports/mechanism.csv").open())}
    header, table = readme_table(next(iter(MECHANISM)))
    assert set(header[1:]) == set(MECHANISM)
    wrong = []
    for row in table:
        for name, cell in zip(header[1:], row[1:]):
            mean, std = cell.split("±")
            ref = rows[("sam.backend=oracle", row[0], MECHANISM[name])]
            if not (same(mean, float(ref["mean"])) and same(std, float(ref["std"]))):
                wrong.append(f"{row[0]} / {name}: README {cell}, mechanism.csv {ref['mean']} ± {ref['std']}")
    assert table and wrong == []
