"""The docs run: every Python and shell block of the README and of docs/python.md, in order,
in a scratch folder as their text describes it (``helpers_docs`` says how: stand-in
weights, labelled images, pictures, a workspace with a default classifier). The
README's chain of verbs runs in tests/test_end_to_end.py, which also checks what each
verb leaves behind. docs/api.md must be what ``docs/api_reference.py`` writes, and every
link between the pages must lead somewhere.
"""

from __future__ import annotations

import re
import sys

import pytest

from helpers_docs import PYTHON_PAGE, README, ROOT, blocks, checked_shell, make_folder, run_block


@pytest.fixture
def folder(tmp_path, workspace, monkeypatch, tiny_network):
    make_folder(tmp_path, workspace, tiny_network)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_page(page, cwd, mark) -> int:
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.mark == mark:
            run_block(block, namespace, cwd)
            ran += 1
    return ran


def test_the_readme_runs(folder):
    assert run_page(README, folder, mark=None) >= 2  # the quick start and Python in five lines


def test_the_python_page_runs(folder):
    assert run_page(PYTHON_PAGE, folder, mark=None) >= 8
    assert (folder / "rows.jsonl").is_file()  # Classifier.classify wrote the file it shows


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for page in (README, PYTHON_PAGE) for b in blocks(page) if b.mark == "slow"],
                         ids=lambda b: b.name)
def test_the_slow_blocks_run(folder, block):
    run_block(block, {"__name__": "__docs__"}, folder)


def test_every_block_is_run_somewhere_and_the_checks_can_fail(tmp_path):
    found = [b for page in (README, PYTHON_PAGE) for b in blocks(page)]
    assert {b.language for b in found} == {"python", "bash"} and len(found) >= 12
    assert {b.mark for b in found} <= {None, "slow", "chain"}
    assert [b.page for b in found if b.mark == "chain"] == [README]  # test_end_to_end runs it
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- docs-test: slow -->\n```bash\npip install '.[nonsense]' && python -m pytest\n```\n"
                    "```bash\ngender-cli demo --format caffe && gender-cli demo\n```\n")
    first, second = blocks(page)
    assert first.mark == "slow" and first.code.startswith("pip install") and second.mark is None
    with pytest.raises(AssertionError, match="no extra"):
        checked_shell(first)
    assert checked_shell(second).count("--help > /dev/null") == 2


# -- the reference and the links ----------------------------------------------------------
def test_the_api_reference_is_current():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import api_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "docs" / "api.md").read_text() == api_reference.render(), \
        "docs/api.md is stale: run python docs/api_reference.py"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page) -> set[str]:
    """GitHub's anchors of a page's headings."""
    slugs = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return slugs


def test_every_link_between_the_pages_leads_somewhere():
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            if not goal.exists() or (anchor and goal.suffix == ".md" and anchor not in _anchors(goal)):
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
