"""Running the docs' code blocks: finding them, the folder they describe, running one.

A Markdown page's ``python`` and ``bash`` blocks run in order in a scratch folder set up
as their text describes it (stand-in weights in ``vgg_face.mat``, labelled images in
``data/``, pictures in ``photos/``). The comment line right before a block may say how
the tests run it: ``<!-- docs-test: slow -->`` (in the slow test) or ``<!-- docs-test:
chain -->`` (the README's chain of verbs, run by tests/test_end_to_end.py, which checks
what each verb leaves behind).

Some shell commands are checked rather than run: ``pip install SPEC`` (each extra it
names must exist in setup.cfg), ``python -m pytest`` (it must be the command CI runs:
the suite cannot run itself) and ``gender-cli demo`` (its ``--help`` must answer; the
demo's code runs in tests/test_formats.py, from two other formats, and running it here
too would add most of a minute to the suite).
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PYTHON_PAGE = ROOT / "docs" / "python.md"
MARK = re.compile(r"^<!-- docs-test: (\w+) -->$")
FENCE = re.compile(r"^```(\w*)\s*$")
PIP_INSTALL = re.compile(r"pip install (?:-e )?'?\.(?:\[([\w,]+)\])?'?")
DEMO = re.compile(r"gender-cli demo\b([^&|;\n]*)")


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    mark: str | None  # "slow", "chain" or None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name}:{self.line}"


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
            mark = MARK.match(lines[start - 1].strip()) if start else None
            found.append(Block(page, start + 1, "bash" if opening.group(1) != "python" else "python",
                               "\n".join(lines[start + 1:index]) + "\n", mark.group(1) if mark else None))
        index += 1
    return found


def make_folder(folder: Path, workspace: Path, network=None) -> Path:
    """vgg_face.mat (tiny stand-in), data/ (labelled), photos/ (pictures that all decode);
    with ``network``, a workspace holding it converted, a trained head and the default
    classifier (else the workspace stays empty, for the chain to fill)."""
    from gender_cli.convert.standin import make_standin
    from gender_cli.synthetic import write_known_answer_dataset

    make_standin(folder / "vgg_face.mat", size="tiny", seed=3)
    write_known_answer_dataset(folder / "data", per_class=12, seed=1)
    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)).save(photos / "street.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos / "crop.png")
    _faces_photo(photos / "group.jpg")
    if network is not None:
        from gender_cli.export.export import export

        from helpers_infer import write_random_head

        network.save(workspace / "converted" / "network")
        write_random_head(workspace / "runs" / "001", 16)  # the tiny stand-in's relu7 has 16 values
        export(network, workspace / "models" / "classifier-fp32.onnx", head=workspace / "runs" / "001")
    return folder


def _faces_photo(path: Path) -> None:
    """A photo with two real faces of the shared sample when it is here, else a plain one."""
    from conftest import UTKFACE_SAMPLE

    if UTKFACE_SAMPLE.is_dir():
        from helpers_faces import frontal_faces, write_photo

        write_photo(path, frontal_faces(UTKFACE_SAMPLE, 2), seed=5)
    else:
        Image.new("RGB", (320, 240), (90, 120, 150)).save(path, quality=90)


def checked_shell(block: Block) -> str:
    """The block's script with its pip, pytest and demo commands checked and replaced."""
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
    return DEMO.sub(lambda m: f"gender-cli demo{m.group(1).rstrip()} --help > /dev/null ", script)


def run_block(block: Block, namespace: dict, cwd: Path) -> subprocess.CompletedProcess | None:
    """Run one block: Python in ``namespace`` (the page's blocks share it), shell in bash -e."""
    if block.language == "python":
        exec(compile(block.code, block.name, "exec"), namespace)  # noqa: S102 - the docs' own code
        return None
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", checked_shell(block)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{block.name} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr
    return done
