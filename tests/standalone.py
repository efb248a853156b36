"""A real Spark standalone cluster on 127.0.0.1 (a master and workers started with pyspark's own
spark-class launcher), and spark-submit against it, shipping the package as a cluster user would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyspark

from sparknoise.jobs.session import DELTA_PACKAGE, IVY_CACHE

SPARK_HOME = os.path.dirname(pyspark.__file__)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return dict(os.environ, SPARK_HOME=SPARK_HOME, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
                SPARK_NO_DAEMONIZE="1")


@dataclass
class Cluster:
    url: str
    folder: str
    master: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker and the executor processes it started (one process group)."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(timeout=60)

    def submit(self, script: str, *args: str, timeout: int = 900, on_line=None, python: str = sys.executable,
               package: str | None = None) -> tuple[int, str]:
        """spark-submit ``script`` to the cluster with the package as a zip in --py-files.

        ``python`` runs the driver and the executors' Python workers; ``package`` is the zip (default: the
        sparknoise folder zipped here). ``on_line(line)`` is called on every line the driver prints
        (stderr and stdout merged). Returns (exit code, the output).
        """
        if package is None:
            package = shutil.make_archive(os.path.join(self.folder, "sparknoise"), "zip", ROOT, "sparknoise")
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", self.url,
            "--packages", DELTA_PACKAGE, "--conf", f"spark.jars.ivy={IVY_CACHE}",
            "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.databricks.delta.snapshotPartitions=2",
            "--conf", f"spark.pyspark.python={python}", "--py-files", package, script, *args,
        ]
        env = dict(_env(), PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
        env.pop("PYSPARK_SUBMIT_ARGS", None)
        proc = subprocess.Popen(cmd, env=env, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        lines = []
        deadline = time.time() + timeout
        try:
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
                if time.time() > deadline:
                    raise TimeoutError(f"spark-submit {script} ran over {timeout}s")
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode, "".join(lines)


def _wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"standalone cluster: {what} within {timeout}s")


@contextmanager
def standalone_cluster(folder: str, workers: int = 2, cores: int = 1, memory: str = "1200m"):
    """Start a master and ``workers`` workers; yield a :class:`Cluster`; stop everything."""
    spark_class = os.path.join(SPARK_HOME, "bin", "spark-class")
    port = free_port()
    logs = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(os.path.join(folder, f"{name}.log"), "w")
        logs.append(log)
        return subprocess.Popen([spark_class, *args], env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    master = start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(free_port()))
    cluster = Cluster(url=f"spark://127.0.0.1:{port}", folder=folder, master=master)
    try:
        master_log = os.path.join(folder, "master.log")
        _wait_for(lambda: "I have been elected leader" in open(master_log).read(), "the master starts")
        for i in range(workers):
            work = os.path.join(folder, f"work{i}")
            os.makedirs(work, exist_ok=True)
            cluster.workers.append(start(
                f"worker{i}", "org.apache.spark.deploy.worker.Worker", cluster.url, "--host", "127.0.0.1",
                "--cores", str(cores), "--memory", memory, "--webui-port", str(free_port()), "--work-dir", work))
        _wait_for(lambda: open(master_log).read().count("Registering worker") >= workers, "the workers register")
        yield cluster
    finally:
        for proc in [*cluster.workers, master]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=60)
        for log in logs:
            log.close()
