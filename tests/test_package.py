"""The installed package: layout, entry points, lazy imports, help texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gender_cli import __version__
from gender_cli.cli.main import COMMANDS, cli


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_card_folders_are_not_importable_at_top_level(tmp_path):
    code = (
        "import importlib.util as u\n"
        "names = ['cli', 'convert', 'train', 'export', 'bench', 'infer']\n"
        "print([n for n in names if u.find_spec(n) is not None])\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_subpackages_map_to_card_folders():
    import gender_cli.convert.network as network
    import gender_cli.infer as infer

    assert network.__file__.replace("\\", "/").endswith("convert/network.py")
    assert infer.__file__.replace("\\", "/").endswith("infer/__init__.py")


def test_version_flag():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gender_cli", "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: gender-cli" in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["classify", "--help"], ["bench", "--help"]])
def test_inference_path_never_imports_tensorflow(tmp_path, argv):
    code = (
        "import sys\n"
        "from gender_cli.cli.main import cli\n"
        f"try:\n    cli({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'scipy', 'h5py', 'tf2onnx') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_verb_is_built_and_every_option_explained():
    ctx = click.Context(cli)
    missing = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, f"verb {name} is not built"
        assert command.help, f"{name} has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{name} {param.opts[0]}")
    assert not missing, f"options without help: {missing}"


def test_installed_package_is_not_shadowed_from_the_repository_root():
    """Python started in the clone's root (``python -m pytest``, ``python -c``) must
    import the installed package whole, not a half of it found in the working tree."""
    root = Path(__file__).resolve().parents[1]
    result = run_python("import gender_cli.cli.main, gender_cli.infer.images, gender_cli.export.export", root)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing,package,fmt,extra_args", [
    ("scipy", "scipy", "mat", []),  # a v5 .mat is read with SciPy
    ("tensorflow", "tensorflow", "mat", ["--keras"]),  # model.keras is TensorFlow's
    ("google.protobuf", "protobuf", "caffe", []),  # Caffe files are parsed with protobuf
])
def test_training_verb_without_the_train_extra_names_the_extra(tmp_path, missing, package, fmt, extra_args):
    """On an inference-only install, convert says what to install instead of a traceback."""
    from gender_cli.convert.formats import FORMATS
    from gender_cli.convert.standin import make_standin

    weights = make_standin(tmp_path / FORMATS[fmt].default_file, size="tiny", format=fmt)
    code = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None  # as if the [train] extra were not installed\n"
        "from gender_cli.cli.main import main\n"
        f"main(['convert', {str(weights)!r}, '-o', {str(tmp_path / 'out')!r}, *{extra_args!r}])\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"needs {package}," in result.stderr and "pip install 'gender-cli[train]'" in result.stderr


@pytest.mark.parametrize(
    "system, machine, expected",
    [
        ("linux", "x86_64", "onnxruntime-gpu"),
        ("win32", "AMD64", "onnxruntime-gpu"),
        ("linux", "aarch64", "onnxruntime"),
        ("darwin", "arm64", "onnxruntime"),
        ("darwin", "x86_64", "onnxruntime"),
        ("win32", "ARM64", "onnxruntime"),
    ],
)
def test_install_takes_exactly_one_onnxruntime_per_platform(system, machine, expected):
    """onnxruntime-gpu where its wheels exist, onnxruntime elsewhere: pip install . works on a laptop."""
    import configparser

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    requirements = [Requirement(line) for line in config["options"]["install_requires"].strip().splitlines()]
    environment = {"sys_platform": system, "platform_machine": machine}
    chosen = [r.name for r in requirements if r.name.startswith("onnxruntime") and r.marker.evaluate(environment)]
    assert chosen == [expected]


def test_bench_holds_the_verbs_library_and_its_scripts_live_apart():
    """bench/ is installed as gender_cli.bench and holds no runnable script; the measurement
    scripts are in bench/scripts/ (not a package, so not installed) and each one runs."""
    bench = Path(__file__).resolve().parents[1] / "bench"
    library = sorted(p.name for p in bench.glob("*.py") if '__name__ == "__main__"' in p.read_text())
    assert library == []
    scripts = sorted(bench.glob("scripts/**/*.py"))
    assert not (bench / "scripts" / "__init__.py").exists()
    runnable = [p.name for p in scripts if '__name__ == "__main__"' in p.read_text()]
    assert {"run_matrix.py", "measure_ray.py", "gpu_bench.py"} <= set(runnable)
    import importlib.util

    assert importlib.util.find_spec("gender_cli.bench.run_matrix") is None
