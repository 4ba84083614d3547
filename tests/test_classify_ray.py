"""``classify --engine ray``: the local engine's rows from Ray Data stages, and nothing lost.

One local Ray (2 CPUs) serves the whole module; the tiny stand-in classifier keeps each
run to seconds. The test that loses a node of a two-raylet cluster (``ray start``,
``local_services.RayNodes``) is marked slow. Reading from and writing to S3 on Ray is
in test_s3.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the [ray] extra (ray[data]) is not installed")
pq = pytest.importorskip("pyarrow.parquet")

from gender_cli.bench.machine import descends_from  # noqa: E402
from gender_cli.cli.main import cli  # noqa: E402
from gender_cli.infer import engine_ray  # noqa: E402
from gender_cli.infer.engine_ray import RayOptions  # noqa: E402
from gender_cli.infer.session import load_classifier  # noqa: E402

from helpers_train import read_csv  # noqa: E402
from helpers_infer import (  # noqa: E402
    assert_same_rows, classify_files, interrupt_after, jsonl_rows, parquet_rows, write_noise_images,
    write_tiny_classifier,
)

SIZE = 32
# as outside pytest: Pillow's decompression-bomb warning is an error (images.py sets it)
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
ACTOR_TITLE = b"MapBatches(Classifier)"  # Ray names an actor's process after its class


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_ray_gives_the_local_rows_on_the_bad_input_corpus(local_ray, model, corpus, tmp_path):
    root, expected = corpus
    local = run("classify", root, "--model", model, "-o", tmp_path / "local", "--format", "parquet", "--batch", 4)
    remote = run("classify", root, "--model", model, "-o", tmp_path / "ray", "--format", "parquet", "--batch", 4, "--engine", "ray")
    assert local.exit_code == remote.exit_code == 3, remote.output
    local_rows, ray_rows = parquet_rows(tmp_path / "local"), parquet_rows(tmp_path / "ray")
    assert len(ray_rows) == len(expected)
    assert_same_rows(ray_rows, local_rows)
    for name, category in expected.items():
        error = ray_rows[str(root / name)]["error"]
        assert (error is None) if category is None else error.startswith(category + ": "), name
    summary = remote.stderr.splitlines()
    assert [l for l in summary if l.startswith("errors:")] == [l for l in local.stderr.splitlines() if l.startswith("errors:")]
    ray_line = next(l for l in summary if l.startswith("ray: "))
    assert "2 CPUs and 0 GPUs on 1 node" in ray_line and "1 inference actor" in ray_line


def dlib_two_heads(tmp_path: Path) -> Path:
    """dlib's residual network (tiny stand-in), its 150x150 input read from the graph."""
    from gender_cli.convert.dlib_resnet import dlib_resnet_network
    from gender_cli.export.export import export

    from helpers_export import save_age_head, save_head

    dim = 8  # the tiny dlib stand-in's embedding
    save_head(tmp_path / "heads", "embedding", dim, seed=3)
    save_age_head(tmp_path / "heads", "embedding", dim, seed=4)
    return export(dlib_resnet_network("tiny"), tmp_path / "both.onnx", head=tmp_path / "heads").path


def scratch_two_heads(tmp_path: Path) -> Path:
    """A network of train --from-scratch (untrained: its numbers are not the point),
    through tf2onnx."""
    from gender_cli.export.export import export
    from gender_cli.export.scratch_export import load_scratch_network

    from helpers_train import untrained_scratch_run

    run_dir = untrained_scratch_run(tmp_path / "run", heads=("gender", "age"))
    return export(load_scratch_network(run_dir), tmp_path / "both.onnx", head=run_dir).path


@pytest.mark.parametrize("make_graph", [dlib_two_heads, scratch_two_heads])
def test_ray_gives_the_local_rows_of_a_graph_with_gender_and_age(local_ray, tmp_path, make_graph):
    """A two-head export (gender and age from one pass) of dlib's residual network and of
    a network trained from scratch: the age column comes through too."""
    from helpers_export import write_image_folder

    model = make_graph(tmp_path)
    folder = write_image_folder(tmp_path / "faces", 5)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    for engine in ("local", "ray"):
        result = run("classify", folder, "--model", model, "-o", tmp_path / engine, "--format", "parquet",
                     "--batch", 2, "--engine", engine)
        assert result.exit_code == 3, result.output
    local_rows, ray_rows = parquet_rows(tmp_path / "local"), parquet_rows(tmp_path / "ray")
    assert list(next(iter(ray_rows.values()))) == ["path", "label", "p_male", "p_female", "age", "error"]
    assert_same_rows(ray_rows, local_rows)
    for path, row in ray_rows.items():
        local_age = local_rows[path]["age"]
        assert (row["age"] is None) if local_age is None else abs(row["age"] - local_age) <= 1e-4, path
    assert sum(row["age"] is not None for row in ray_rows.values()) == 5


@pytest.fixture
def photos(tmp_path, utkface_sample):
    """Photos holding 1, 2 and 3 real faces, one without a face and a broken file."""
    from helpers_faces import frontal_faces, write_photo
    from PIL import Image

    root = tmp_path / "photos"
    write_photo(root / "one.jpg", frontal_faces(utkface_sample, 1), seed=1)
    write_photo(root / "three.jpg", frontal_faces(utkface_sample, 3, start=3), seed=3, size=(600, 300))
    write_photo(root / "two.jpg", frontal_faces(utkface_sample, 2, start=1), seed=2)
    Image.new("RGB", (300, 200), (90, 140, 200)).save(root / "none.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def face_rows(path: Path) -> list[dict]:
    return sorted(read_csv(path), key=lambda row: (row["path"], row["face"]))


def assert_same_face_rows(ray_rows: list[dict], local_rows: list[dict]) -> None:
    assert len(ray_rows) == len(local_rows)
    for ours, theirs in zip(ray_rows, local_rows):
        assert {k: v for k, v in ours.items() if not k.startswith("p_")} == \
               {k: v for k, v in theirs.items() if not k.startswith("p_")}
        for key in ("p_male", "p_female"):
            assert (ours[key] == theirs[key] == "") or abs(float(ours[key]) - float(theirs[key])) <= 1e-6


def test_ray_detect_gives_the_local_face_rows(local_ray, model, photos, tmp_path):
    """Batches of 2 rows: the faces of one photo straddle actor calls and still come
    out as the local engine's rows, summary included."""
    outputs = {}
    for engine in ("local", "ray"):
        outputs[engine] = run("classify", photos, "--model", model, "-o", tmp_path / f"{engine}.csv", "--detect",
                              "--batch", 2, "--engine", engine)
        assert outputs[engine].exit_code == 3, outputs[engine].output  # the broken file
    local_rows, ray_rows = face_rows(tmp_path / "local.csv"), face_rows(tmp_path / "ray.csv")
    assert [r["faces"] for r in local_rows if r["path"].endswith("three.jpg")] == ["3"] * 3
    assert_same_face_rows(ray_rows, local_rows)
    lines = {engine: [line for line in result.stderr.splitlines() if line.startswith(("faces:", "errors:"))]
             for engine, result in outputs.items()}
    assert lines["ray"] == lines["local"] and "faces: 6 in 3 files, no face: 1" in lines["ray"][0]


def test_ray_detect_resume_finishes_a_photo_cut_short(local_ray, model, photos, tmp_path):
    complete = tmp_path / "complete.csv"
    run("classify", photos, "--model", model, "-o", complete, "--detect", "-q")
    cut = tmp_path / "cut.csv"
    lines = complete.read_text().splitlines(keepends=True)
    assert lines[-1].startswith(str(photos / "two.jpg"))  # the listing's last photo: two faces
    cut.write_text("".join(lines[:-1]))  # its second face's row lost
    result = run("classify", photos, "--model", model, "-o", cut, "--detect", "--resume", "--engine", "ray")
    assert result.exit_code == 3, result.output
    assert "1 file(s) had only part of their face rows; done again" in result.stderr
    assert "already done (--resume): 4" in result.stderr
    assert_same_face_rows(face_rows(cut), face_rows(complete))


def _descendants_titled(title: bytes) -> list[int]:
    """Processes started (at any depth) by this one whose command line holds ``title``."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if title in command and descends_from(int(entry), me):
            found.append(int(entry))
    return found


def test_an_actor_killed_mid_run_still_leaves_one_row_per_file(local_ray, tmp_path):
    slow = write_tiny_classifier(tmp_path / "slow.onnx", size=SIZE, busy=16)  # ~0.1 s a batch
    folder = write_noise_images(tmp_path / "faces", 40)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    killed, seen_after = [], set()

    def kill_the_actor(count):
        actors = _descendants_titled(ACTOR_TITLE)
        if not killed:
            assert len(actors) == 1
            os.kill(actors[0], signal.SIGKILL)
            killed.append(actors[0])
        else:
            seen_after.update(actors)

    out = tmp_path / "rows.jsonl"
    summary = classify_files([folder], slow, out, batch=2, engine="ray", ray=RayOptions(actors=1), on_batch=kill_the_actor)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    files = sorted(str(p) for p in folder.iterdir())
    assert sorted(r["path"] for r in records) == files  # each file exactly once
    assert summary.classified == 40 and summary.failed == 1
    assert seen_after - set(killed)  # the pool went on with a new actor while rows still came
    local = tmp_path / "local.jsonl"
    classify_files([folder], slow, local, batch=2)
    local_rows = {r["path"]: r for r in map(json.loads, local.read_text().splitlines())}
    assert_same_rows({r["path"]: r for r in records}, local_rows)


def test_the_api_on_ray_writes_the_cli_s_local_rows(local_ray, model, corpus, tmp_path):
    from gender_cli import Classifier

    root, expected = corpus
    assert run("classify", root, "--model", model, "-o", tmp_path / "local.jsonl", "-q").exit_code == 3
    summary = Classifier(model, device="cpu", batch=8).classify(root, tmp_path / "ray.jsonl", engine="ray")
    assert summary.engine == "ray" and summary.cluster is not None and summary.files == len(expected)
    rows = [{r["path"]: r for r in map(json.loads, (tmp_path / name).read_text().splitlines())}
            for name in ("ray.jsonl", "local.jsonl")]
    assert_same_rows(*rows)


def test_resume_after_an_interrupted_ray_run(local_ray, model, tmp_path):
    folder = write_noise_images(tmp_path / "faces", 24)
    out = tmp_path / "rows.csv"
    with pytest.raises(KeyboardInterrupt):
        classify_files([folder], model, out, batch=4, engine="ray", on_batch=interrupt_after(2))
    partial = read_csv(out)
    assert len(partial) == 8  # two whole blocks, nothing half-written
    result = run("classify", folder, "--model", model, "-o", out, "--resume", "--engine", "ray", "--batch", 4)
    assert result.exit_code == 0, result.output
    assert "already done (--resume): 8" in result.stderr
    rows = read_csv(out)
    assert rows[:8] == partial
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.iterdir())


def test_file_uri_and_pyarrow_sources(local_ray, model, corpus, tmp_path):
    """file:// lists and reads as the local engine does (links, loops, dangling links);
    another pyarrow scheme (local://, pyarrow's LocalFileSystem) goes through pyarrow."""
    root, expected = corpus
    shutil.copy(root / "good.jpg", root / os.fsdecode(b"not-utf8-\xff.jpg"))  # a name that is not UTF-8
    good = write_noise_images(tmp_path / "good", 6)
    out = tmp_path / "uri.jsonl"
    result = run(
        "classify", f"file://{root}", f"local://{good}", "--model", model, "-o", out, "--engine", "ray", "--batch", 4
    )
    assert result.exit_code == 3, result.output
    ray_rows = jsonl_rows(out)
    local_out = tmp_path / "local.jsonl"
    assert run("classify", root, good, "--model", model, "-o", local_out, "--batch", 4).exit_code == 3
    local_rows = jsonl_rows(local_out)
    assert len(ray_rows) == len(expected) + 1 + 6
    assert_same_rows(ray_rows, local_rows, rename=lambda p: p.removeprefix("file://").removeprefix("local://"))
    assert ray_rows[f"file://{root}/sub/dangling.jpg"]["error"].startswith("unreadable: ")
    assert f"local://{good}/face_00.png" in ray_rows
    assert ray_rows[f"file://{root}/" + os.fsdecode(b"not-utf8-\xff.jpg")]["label"]


def test_decoding_stays_in_its_own_tasks_even_when_resources_match(local_ray, model, tmp_path):
    """Ray Data fuses stages whose resource requests are equal; decoding inside the actor
    would serialise it with inference, so the stages must stay apart."""
    from gender_cli.infer.ray_cluster import DECODE_CPUS, ClusterShape, plan

    folder = write_noise_images(tmp_path / "faces", 4)
    classified = load_classifier(model, "cpu")
    same = plan(ClusterShape((2.0,), (0.0,)), cpus_per_actor=DECODE_CPUS)
    dataset = engine_ray._pipeline(
        [str(p) for p in sorted(folder.iterdir())], classified.path, classified.info, same, 2, "stretch",
        engine_ray.Reader(),
    )
    assert sum(len(block["path"]) for block in dataset.iter_batches(batch_size=None)) == 4
    stages = dataset.stats()
    assert "MapBatches(decode)" in stages and "MapBatches(decode)->" not in stages


def test_the_model_reaches_the_actors_without_a_shared_disk(local_ray, tiny_network, tmp_path, monkeypatch):
    """The actors get the model, its external-data side file included, from the object
    store: the model's folder is gone before they start."""
    from gender_cli.export.export import export

    from helpers_export import save_head, write_image_folder

    save_head(tmp_path / "head", "relu7", 16, seed=3)  # 16: the tiny stand-in's relu7
    model = export(tiny_network, tmp_path / "models" / "split.onnx", head=tmp_path / "head", external_data=True).path
    assert model.with_name(model.name + ".data").is_file()
    folder = write_image_folder(tmp_path / "faces", 4)
    local = tmp_path / "local.csv"
    classify_files([folder], model, local, batch=4)
    real_ship = engine_ray.ship_model

    def ship_then_hide(path):
        shipped = real_ship(path)
        shutil.move(str(Path(path).parent), str(tmp_path / "hidden"))
        return shipped

    monkeypatch.setattr(engine_ray, "ship_model", ship_then_hide)
    summary = classify_files([folder], model, tmp_path / "rows.csv", batch=4, engine="ray")
    assert not model.parent.exists()
    assert summary.classified == 4 and summary.providers == ["CPUExecutionProvider"]
    assert sorted(read_csv(tmp_path / "rows.csv"), key=lambda r: r["path"]) == read_csv(local)


def test_actors_that_cannot_fit_are_an_error_before_any_work(local_ray, model, tmp_path):
    folder = write_noise_images(tmp_path / "faces", 2)
    out = tmp_path / "rows.csv"
    result = run("classify", folder, "--model", model, "-o", out, "--engine", "ray", "--actors", 3, "--cpus-per-actor", 1)
    assert result.exit_code == 1
    assert "need 3.5 CPUs; the Ray cluster has 2 CPUs and 0 GPUs on 1 node" in result.output
    result = run("classify", folder, "--model", model, "-o", out, "--engine", "ray", "--gpus-per-actor", 1)
    assert result.exit_code == 1 and "has 2 CPUs and 0 GPUs" in result.output
    assert not out.exists()


def test_bench_reports_the_ray_engine_beside_local(local_ray, model, tmp_path):
    folder = write_noise_images(tmp_path / "faces", 8)
    report = tmp_path / "bench.json"
    result = run(
        "bench", "--model", model, "--images", folder, "--engine", "ray", "--batch", 4, "--iters", 3,
        "--no-variants", "-o", report, "-q",
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    ray_figures = figures["end_to_end_ray"]
    assert ray_figures["files"] == 8 and ray_figures["failed_files"] == 0
    assert ray_figures["images_per_second"] > 0 and "1 inference actor" in ray_figures["plan"]
    assert ray_figures["ratio_to_local"] == pytest.approx(
        ray_figures["images_per_second"] / figures["end_to_end"]["images_per_second"]
    )
    assert "end-to-end on ray" in result.stdout


def test_bench_with_detect_runs_the_ray_pass_detecting_too(local_ray, model, photos, tmp_path):
    report = tmp_path / "bench.json"
    result = run("bench", "--model", model, "--images", photos, "--detect", "--engine", "ray", "--batch", 2,
                 "--iters", 2, "--no-variants", "-o", report, "-q")
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    local, on_ray = figures["end_to_end"], figures["end_to_end_ray"]
    assert on_ray["files"] == local["files"] == 5 and on_ray["faces"] == local["faces"] == 6
    assert on_ray["detection"] == local["detection"] and on_ray["ratio_to_local"] == pytest.approx(
        on_ray["images_per_second"] / local["images_per_second"])
    assert "6 faces" in result.stdout


@pytest.mark.slow
def test_a_node_lost_mid_run_on_raylets_started_with_ray_start(tmp_path):
    """A cluster as users have one: ``ray start --head`` (2 CPUs) and ``ray start
    --address`` (1 CPU), then ``RAY_ADDRESS=... gender-cli classify --engine ray`` in a
    fresh process. Mid-run the second node, which holds one of the two inference actors,
    loses every process at once (a preempted machine): its decode tasks and its actor are
    redone on the head, and every file still gets exactly one row, the local engine's."""
    from local_services import QUICK_NODE_DEATH, RayNodes  # the stall with Ray's defaults: measure_node_loss.py

    slow = write_tiny_classifier(tmp_path / "slow.onnx", size=SIZE, busy=16)  # ~0.1 s a batch
    folder = write_noise_images(tmp_path / "faces", 60)
    out = tmp_path / "rows.jsonl"
    with RayNodes(head_cpus=2, settings=QUICK_NODE_DEATH) as cluster:
        cluster.add_node(cpus=1)
        run = subprocess.Popen(
            [sys.executable, "-m", "gender_cli", "classify", str(folder), "--model", str(slow), "-o", str(out),
             "--engine", "ray", "--actors", "2", "--cpus-per-actor", "0.5", "--batch", "2"],
            env=cluster.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        written = _rows_once(out, at_least=10, process=run)
        assert any(ACTOR_TITLE.decode() in command for command in cluster.processes(1).values())
        cluster.kill(1)
        _, stderr = run.communicate(timeout=300)
    assert written < 60, "the run ended before the node was lost"
    assert run.returncode == 0, stderr
    assert "3 CPUs and 0 GPUs on 2 nodes" in stderr and "2 inference actors" in stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(str(p) for p in folder.iterdir())  # each once
    classify_files([folder], slow, tmp_path / "local.jsonl", batch=2)
    assert_same_rows({r["path"]: r for r in records}, jsonl_rows(tmp_path / "local.jsonl"))


def _rows_once(path: Path, at_least: int, process: subprocess.Popen, timeout: float = 300) -> int:
    """Waits until ``path`` holds ``at_least`` rows; returns how many it holds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = path.read_bytes().count(b"\n") if path.exists() else 0
        if rows >= at_least:
            return rows
        if process.poll() is not None:
            raise AssertionError(f"the run ended with {process.returncode} before writing {at_least} rows: "
                                 f"{process.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {at_least} rows")


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (Ray's own: gcs_server, raylet, agents)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_ctrl_c_while_ray_starts_exits_130_honestly_and_leaves_no_ray_process(model, tmp_path):
    """Ctrl-C while the run's own Ray is starting: exit 130 with one line that does not
    claim rows in an output never opened, and every process that Ray started gone
    (before: SIGSEGV some of the time, agents left running for minutes)."""
    import tempfile

    folder = write_noise_images(tmp_path / "faces", 4)
    out = tmp_path / "rows.csv"
    ray_dir = tempfile.mkdtemp(prefix="gcr", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_dir}
    env.pop("RAY_ADDRESS", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "gender_cli", "classify", str(folder), "--model", str(model), "-o", str(out),
         "--engine", "ray", "--device", "cpu", "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _processes_mentioning(ray_dir) and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert _processes_mentioning(ray_dir), "Ray never started"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Warning: this model")]
    assert child.returncode == 130, stderr
    assert len(lines) == 1 and lines[0].startswith("Interrupted") and "complete" not in lines[0], stderr
    assert not out.exists()
    deadline = time.monotonic() + 30
    while _processes_mentioning(ray_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(ray_dir)
    shutil.rmtree(ray_dir, ignore_errors=True)
