"""Ray for ``classify --engine ray``: connect, size the stages, check that they fit.

Connection: ``--ray-address``, else ``$RAY_ADDRESS``, else a local Ray started for
the run (no dashboard, errors-only logs, worker output kept off the terminal) and shut
down at its end; ``address="local"`` makes it a new one (a plain ``ray.init()`` would
join the cluster that the last ``ray start`` on this machine recorded in /tmp/ray). A
Ray that this process already started (tests, notebooks) is used as it is and left
running.

Ray's C++ core mirrors its error-level log lines to the driver's stderr, and Ray 2.60
writes one for every restartable actor whose constructor arguments sit in the object
store (every Ray Data actor); ``ray.init`` therefore runs with
``RAY_BACKEND_LOG_LEVEL=fatal`` and its own stderr output discarded. Failures still
reach the user, as exceptions that the CLI prints as one line.

Sizing (``plan``), from the cluster as it is when the run starts:

- A decode task reserves ``DECODE_CPUS`` (half a core: a task also waits on reads,
  which from object storage take longer than decoding).
- An inference actor holds one onnxruntime session. With GPUs (``--gpus-per-actor``,
  default 1 when the cluster has GPUs) it reserves ``GPU_ACTOR_CPUS`` to feed its GPU;
  on CPUs it reserves the smallest node's cores less one decode task, shared by the
  actors placed on a node, and runs that many onnxruntime threads (rounded up).
- Default actor count: one per GPU (total GPUs / GPUs per actor), else one per node.

A plan that cannot fit (more GPUs than the cluster has, an actor larger than every
node, actors that leave no room for a single decode task) is an error before
anything starts: Ray would otherwise wait for resources that never come, silently.
Ray Data's own guards back this up: actors that do not start within
``ACTOR_START_TIMEOUT_S`` fail the run, as does a pipeline without progress for
Ray Data's no-progress timeout.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError, first_line

DECODE_CPUS = 0.5
GPU_ACTOR_CPUS = 1.0
ACTOR_START_TIMEOUT_S = 600
ADDRESS_VARIABLE = "RAY_ADDRESS"
BACKEND_LOG_VARIABLE = "RAY_BACKEND_LOG_LEVEL"

# A local Ray for one command: quiet, nothing listening beyond what Ray itself needs.
LOCAL_START = {"address": "local", "include_dashboard": False}
QUIET = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}

# Ray Data settings for our pipeline: our own progress bar and summary instead of Ray's.
DATA_CONTEXT = {
    "enable_progress_bars": False,
    "print_on_execution_start": False,
    "enable_auto_log_stats": False,
    "wait_for_min_actors_s": ACTOR_START_TIMEOUT_S,
}


def require_ray() -> None:
    """Import Ray now: without the [ray] extra, the CLI's install hint comes before any work."""
    importlib.import_module("ray")


@dataclass
class Connection:
    address: str  # "local" for a Ray started by this run
    owned: bool  # started here, shut down at the end
    startup_seconds: float


def connect(address: str | None = None) -> Connection:
    """Connect to (or start) Ray; see the module docstring for the order of choices."""
    import ray
    import ray.exceptions

    if ray.is_initialized():
        configure_data_context()
        return Connection(address=_current_address(), owned=False, startup_seconds=0.0)
    address = address or os.environ.get(ADDRESS_VARIABLE) or None
    started = time.perf_counter()
    try:
        with _interrupt_deferred() as interrupted, _native_logs_quiet():
            if address:
                ray.init(address=address, **QUIET)
            else:
                ray.init(**LOCAL_START, **QUIET)
    except (ConnectionError, ValueError, RuntimeError, ray.exceptions.RayError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise GenderCliError(f"cannot start or reach {where}: {first_line(exc)}") from None
    connection = Connection(address=address or "local", owned=True, startup_seconds=time.perf_counter() - started)
    if interrupted:
        disconnect(connection)
        raise KeyboardInterrupt
    configure_data_context()
    return connection


@contextmanager
def _interrupt_deferred():
    """Hold Ctrl-C back while Ray starts or stops: interrupted half-way, ``ray.init`` leaves
    its processes running with nobody to stop them, and the interpreter can crash on
    exit (SIGSEGV). Yields a list that is non-empty once Ctrl-C came; the caller finishes,
    then stops Ray and raises KeyboardInterrupt. Outside the main thread nothing changes."""
    interrupted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: interrupted.append(number))
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _native_logs_quiet():
    """Ray's C++ log level for this process (read once, by ray.init) and stderr muted meanwhile."""
    previous = os.environ.get(BACKEND_LOG_VARIABLE)
    os.environ[BACKEND_LOG_VARIABLE] = "fatal"
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
        if previous is None:
            os.environ.pop(BACKEND_LOG_VARIABLE, None)
        else:
            os.environ[BACKEND_LOG_VARIABLE] = previous


def configure_data_context() -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    for name, value in DATA_CONTEXT.items():
        setattr(context, name, value)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def disconnect(connection: Connection) -> None:
    """Shut down a Ray this run started (a second Ctrl-C meanwhile waits until it has)."""
    import ray

    if connection.owned and ray.is_initialized():
        with _interrupt_deferred() as interrupted:
            ray.shutdown()
        if interrupted:
            raise KeyboardInterrupt


def _current_address() -> str:
    import ray

    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # older or client-mode runtimes have no GCS address to show
        return "connected"


@dataclass(frozen=True)
class ClusterShape:
    node_cpus: tuple[float, ...]
    node_gpus: tuple[float, ...]

    @property
    def nodes(self) -> int:
        return len(self.node_cpus)

    @property
    def cpus(self) -> float:
        return sum(self.node_cpus)

    @property
    def gpus(self) -> float:
        return sum(self.node_gpus)

    def describe(self) -> str:
        return f"{_number(self.cpus)} CPUs and {_number(self.gpus)} GPUs on {self.nodes} node{'s' * (self.nodes != 1)}"


def cluster_shape() -> ClusterShape:
    import ray

    alive = [node for node in ray.nodes() if node.get("Alive")]
    return ClusterShape(
        node_cpus=tuple(float(n["Resources"].get("CPU", 0)) for n in alive),
        node_gpus=tuple(float(n["Resources"].get("GPU", 0)) for n in alive),
    )


@dataclass(frozen=True)
class Plan:
    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    decode_cpus: float
    device: str  # what each actor's session runs on: "cuda" or "cpu"
    threads: int  # onnxruntime intra-op threads per actor

    def describe(self) -> str:
        per_actor = f"{_number(self.cpus_per_actor)} CPU" + (
            f", {_number(self.gpus_per_actor)} GPU" if self.gpus_per_actor else ""
        )
        return (
            f"{self.actors} inference actor{'s' * (self.actors != 1)} ({per_actor} each, {self.device}), "
            f"decode tasks {_number(self.decode_cpus)} CPU each"
        )


def plan(
    shape: ClusterShape,
    device: str = DEFAULT_DEVICE,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float | None = None,
) -> Plan:
    """Size the actors for ``shape`` (see the module docstring); GenderCliError if they cannot fit."""
    if shape.nodes == 0 or shape.cpus <= 0:
        raise GenderCliError("the Ray cluster has no CPUs to run on")
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if shape.gpus > 0 and device != "cpu" else 0.0
    if device == "cpu" and gpus_per_actor > 0:
        raise GenderCliError("--device cpu contradicts --gpus-per-actor above 0")
    if device == "cuda" and gpus_per_actor == 0:
        if shape.gpus == 0:
            raise GenderCliError(f"--device cuda: the Ray cluster has no GPUs ({shape.describe()})")
        raise GenderCliError("--device cuda needs --gpus-per-actor above 0")
    if gpus_per_actor > 0 and shape.gpus < gpus_per_actor:
        raise GenderCliError(
            f"--gpus-per-actor {_number(gpus_per_actor)}: the Ray cluster has {shape.describe()}; "
            "use --gpus-per-actor 0 (or --device cpu) to classify on CPUs"
        )
    if actors is None:
        actors = max(1, math.floor(shape.gpus / gpus_per_actor + 1e-9)) if gpus_per_actor else shape.nodes
    if cpus_per_actor is None:
        if gpus_per_actor:
            cpus_per_actor = GPU_ACTOR_CPUS
        else:
            per_node = math.ceil(actors / shape.nodes)
            cpus_per_actor = max(DECODE_CPUS, (min(shape.node_cpus) - DECODE_CPUS) / per_node)
    result = Plan(
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        gpus_per_actor=gpus_per_actor,
        decode_cpus=DECODE_CPUS,
        device="cuda" if gpus_per_actor else "cpu",
        threads=max(1, math.ceil(cpus_per_actor - 1e-9)),
    )
    _check_fits(shape, result)
    return result


def _check_fits(shape: ClusterShape, p: Plan) -> None:
    hint = "lower --actors, --gpus-per-actor or --cpus-per-actor"
    if not any(c >= p.cpus_per_actor and g >= p.gpus_per_actor for c, g in zip(shape.node_cpus, shape.node_gpus)):
        raise GenderCliError(
            f"no node of the Ray cluster ({shape.describe()}) can hold one inference actor "
            f"({_number(p.cpus_per_actor)} CPU, {_number(p.gpus_per_actor)} GPU); {hint}"
        )
    if p.actors * p.gpus_per_actor > shape.gpus + 1e-9:
        raise GenderCliError(
            f"{p.actors} actors x {_number(p.gpus_per_actor)} GPU need {_number(p.actors * p.gpus_per_actor)} GPUs; "
            f"the Ray cluster has {shape.describe()}; {hint}"
        )
    needed = p.actors * p.cpus_per_actor + p.decode_cpus
    if needed > shape.cpus + 1e-9:
        raise GenderCliError(
            f"{p.actors} actors x {_number(p.cpus_per_actor)} CPU plus one decode task ({_number(p.decode_cpus)} CPU) "
            f"need {_number(needed)} CPUs; the Ray cluster has {shape.describe()}; {hint}"
        )


def _number(value: float) -> str:
    return f"{value:g}"
