"""The docs run: every Python and shell block of the README and of docs/python.md, in order,
in a scratch folder as their text describes it (stand-in weights in ``vgg_face.mat``,
labelled images in ``data/``, pictures in ``photos/``, a workspace with a default
classifier). A block preceded by ``<!-- docs-test: slow -->`` runs in the slow test.

Shell blocks run in bash with ``-e``. Two kinds of command are checked rather than
run: ``pip install SPEC`` (each extra it names must exist in setup.cfg) and
``python -m pytest`` (it must be the command CI runs; running the suite inside itself
would recurse). docs/api.md must be what ``docs/api_reference.py`` writes, and every
link between the pages must lead somewhere.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "python.md"]
SLOW_MARK = "<!-- docs-test: slow -->"
FENCE = re.compile(r"^```(\w*)\s*$")
PIP_INSTALL = re.compile(r"pip install (?:-e )?'?\.(?:\[([\w,]+)\])?'?")


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    slow: bool

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The Python and shell blocks of a Markdown page, in order."""
    found, lines = [], page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening.group(1):
            index += 1
            continue
        start = index
        index += 1
        while not lines[index].startswith("```"):
            index += 1
        if opening.group(1) in ("python", "bash", "sh", "shell"):
            slow = start > 0 and lines[start - 1].strip() == SLOW_MARK
            found.append(Block(page, start + 1, opening.group(1), "\n".join(lines[start + 1:index]) + "\n", slow))
        index += 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


# -- the folder the docs describe ---------------------------------------------------------
@pytest.fixture
def folder(tmp_path, workspace, monkeypatch, tiny_network):
    """cwd: vgg_face.mat (tiny stand-in), data/ (labelled), photos/ (pictures); the
    workspace holds a converted network, a trained head and the default classifier."""
    from gender_cli.convert.standin import make_standin
    from gender_cli.export.export import export
    from gender_cli.synthetic import write_known_answer_dataset

    from helpers_infer import write_random_head

    make_standin(tmp_path / "vgg_face.mat", size="tiny", seed=3)
    write_known_answer_dataset(tmp_path / "data", per_class=12, seed=1)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)).save(photos / "street.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos / "crop.png")
    _faces_photo(photos / "group.jpg")
    tiny_network.save(workspace / "converted" / "network")
    write_random_head(workspace / "runs" / "001", 16)  # the tiny stand-in's relu7 has 16 values
    export(tiny_network, workspace / "models" / "classifier-fp32.onnx", head=workspace / "runs" / "001")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _faces_photo(path: Path) -> None:
    """A photo with two real faces of the shared sample when it is here, else a plain one."""
    from conftest import UTKFACE_SAMPLE

    if UTKFACE_SAMPLE.is_dir():
        from helpers_faces import frontal_faces, write_photo

        write_photo(path, frontal_faces(UTKFACE_SAMPLE, 2), seed=5)
    else:
        Image.new("RGB", (320, 240), (90, 120, 150)).save(path, quality=90)


# -- running a block ----------------------------------------------------------------------
def run_block(block: Block, namespace: dict, cwd: Path) -> None:
    if block.language == "python":
        exec(compile(block.code, block.name, "exec"), namespace)  # noqa: S102 - the docs' own code
        return
    script = _checked_shell(block)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{block.name} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def _checked_shell(block: Block) -> str:
    """The block's script, its pip and pytest commands checked and replaced by ``true``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = set(config["options.extras_require"])

    def pip(match: re.Match) -> str:
        named = set(filter(None, (match.group(1) or "").split(",")))
        assert named <= extras, f"{block.name}: no extra {sorted(named - extras)} in setup.cfg"
        return "true"

    script = PIP_INSTALL.sub(pip, block.code)
    if "python -m pytest" in script:
        assert "python -m pytest\n" in (ROOT / ".ci" / "run").read_text(), "CI no longer runs `python -m pytest`"
        script = script.replace("python -m pytest", "true")
    return script


def run_page(page: Path, cwd: Path, slow: bool) -> int:
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.slow == slow:
            run_block(block, namespace, cwd)
            ran += 1
    return ran


def test_the_readme_runs(folder):
    assert run_page(ROOT / "README.md", folder, slow=False) >= 1


def test_the_python_page_runs(folder):
    assert run_page(ROOT / "docs" / "python.md", folder, slow=False) >= 8
    assert (folder / "rows.jsonl").is_file()  # Classifier.classify wrote the file it shows


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in all_blocks() if b.slow], ids=lambda b: b.name)
def test_the_slow_blocks_run(folder, block):
    run_block(block, {"__name__": "__docs__"}, folder)


def test_every_block_is_found_and_the_checks_can_fail(tmp_path):
    found = all_blocks()
    assert {b.language for b in found} == {"python", "bash"} and len(found) >= 12
    page = tmp_path / "page.md"
    page.write_text(f"text\n\n{SLOW_MARK}\n```bash\npip install '.[nonsense]' && python -m pytest\n```\n")
    (block,) = blocks(page)
    assert block.slow and block.code.startswith("pip install")
    block.page = ROOT / "README.md"  # names it for the message
    with pytest.raises(AssertionError, match="no extra"):
        _checked_shell(block)


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


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    slugs = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return slugs


def test_every_link_between_the_pages_leads_somewhere():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            if not goal.exists() or (anchor and goal.suffix == ".md" and anchor not in _anchors(goal)):
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
