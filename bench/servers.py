"""The project's own processes for benchmarks: gunicorn serving mur_site.wsgi and Celery workers,
started on 127.0.0.1 as docker-compose.yml runs them, and stopped with their children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def start_gunicorn(
    env: dict,
    port: int,
    workers: int,
    worker_class: str = "sync",
    threads: int = 1,
    log: Path | None = None,
    timeout: int = 30,
    access_log: bool = False,
) -> subprocess.Popen:
    """gunicorn on 127.0.0.1:`port`, returned once /healthz answers (any status: it serves)."""
    if worker_class == "sync" and threads != 1:
        # gunicorn would quietly serve with gthread workers instead, and the report would say sync.
        raise ValueError(f"a sync worker has one thread, not {threads}")
    cmd = [
        _bin("gunicorn"),
        "mur_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--backlog",
        "2048",
        "--timeout",
        str(timeout),
        "--log-level",
        "warning",
    ]
    if access_log:
        cmd += ["--access-logfile", "-"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("w") if log else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except urllib.error.HTTPError:
            return proc  # an answer (503: the candles are old) means it serves
        except OSError:
            time.sleep(0.3)
    stop(proc)
    sys.exit(f"gunicorn did not answer within 60 s:\n{_tail(log)}")


def start_celery_worker(env: dict, queues: str, concurrency: int, name: str, log: Path) -> subprocess.Popen:
    """A Celery worker on `queues`, returned once it says it is ready to take tasks."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "mur_site",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"celery worker {name} exited:\n{_tail(log)}")
        if " ready." in _tail(log):
            return proc
        time.sleep(0.3)
    stop(proc)
    sys.exit(f"celery worker {name} was not ready within 90 s:\n{_tail(log)}")


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group (gunicorn's and Celery's children too), SIGKILL if it hangs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
