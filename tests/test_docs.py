"""The documentation site's gate: the build `make docs` runs (and `make test` with it) fails on a broken
link, a link to a missing anchor, and a page missing from, or left out of, the nav."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"


def docs_command() -> list[str]:
    """`make docs`' own build command, so this test follows the Makefile's flags."""
    recipe = re.search(r"^docs:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile lost its docs target"
    words = [word for word in shlex.split(recipe.group(1)) if "=" not in word.split("/")[0]]
    assert words[0].endswith("mkdocs") and "--strict" in words, words
    return [str(MKDOCS), *words[1:]]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def build(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(docs_command(), cwd=site, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_and_each_kind_of_break_fails_it(site: Path) -> None:
    whole = build(site)
    assert whole.returncode == 0, whole.stderr[-2000:]
    index = site / "docs" / "index.md"
    original = index.read_text()

    index.write_text(original + "\n[gone](operations/no-such-page.md)\n")
    broken = build(site)
    assert broken.returncode == 1 and "operations/no-such-page.md" in broken.stderr

    index.write_text(original + "\n[gone](operations/backups.md#no-such-anchor)\n")
    anchor = build(site)
    assert anchor.returncode == 1 and "no-such-anchor" in anchor.stderr

    index.write_text(original)
    (site / "docs" / "orphan.md").write_text("# Not in the nav\n")
    orphan = build(site)
    assert orphan.returncode == 1 and "orphan.md" in orphan.stderr

    (site / "docs" / "orphan.md").unlink()
    (site / "docs" / "operations" / "backups.md").unlink()
    missing = build(site)
    assert missing.returncode == 1 and "operations/backups.md" in missing.stderr


def test_the_readme_is_short_and_its_links_lead_into_the_site() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in local)
    assert [target for target in local if not (ROOT / target).exists()] == []
