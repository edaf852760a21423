"""Running the project's real processes (Celery workers, the web server) from tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without the project's own settings variables, plus `extra`."""
    drop = ("DATABASE_URL", "REDIS_URL", "DJANGO_", "MUR_", "CELERY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def start_worker(env: dict[str, str], queues: str, name: str, log: Path, cwd: Path | None = None) -> subprocess.Popen:
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
        "1",
        "-n",
        f"{name}@%h",
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
    ]
    # `cwd`: a working folder of its own (the code is found through PYTHONPATH), as on another machine.
    env = {**env, "PYTHONPATH": str(ROOT)} if cwd is not None else env
    return subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, log: Path | None = None, interval: float = 0.3
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- process log ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


def stop(proc: subprocess.Popen, sig_timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=sig_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def write_klines(path: Path, source: Path, rows: int) -> None:
    """A small kline file made from the first `rows` rows of a real one (in a temp folder)."""
    with source.open() as src, path.open("w") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)


def child_pids(pid: int) -> list[int]:
    """Direct children of a process, from /proc (Linux)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; the parent pid follows the closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def database_url_for_subprocess() -> str:
    """DATABASE_URL that points a child process (worker, server) at the test database."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
