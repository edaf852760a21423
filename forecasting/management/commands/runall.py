"""Run web, worker, trainer and beat together in the foreground; Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from forecasting.management.activity import ActivityFeed

REPORT_SECONDS = 2.0


class Command(BaseCommand):
    help = "Start the web server, the Celery workers (ingest+forecast, and train) and beat; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="web server address (default 127.0.0.1:8000)")
        parser.add_argument("--reload", action="store_true", help="reload the web server on code changes")
        parser.add_argument(
            "--loglevel",
            default="warning",
            help="the workers' log level (default warning: this command reports their progress itself)",
        )

    def handle(self, *args, addr, reload, loglevel, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        # -q: no banner per worker; the line below says what runs where.
        celery = [python, "-m", "celery", "-A", "mur_site", "-q"]
        quiet = {
            # Celery warns about root in every worker; said once below instead.
            "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
            "DJANGO_RUNSERVER_HIDE_WARNING": "true",
        }
        # whitenoise warns on every start when the collected-files folder does not exist; the
        # local settings serve from the apps' folders and need none collected.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        # Training gets one process with pinned threads: oversubscribed torch threads on few cores
        # slow training down by orders of magnitude.
        torch_threads = str(max(1, (os.cpu_count() or 2) // 2))
        trainer_env = {
            "OMP_NUM_THREADS": torch_threads,
            "MKL_NUM_THREADS": torch_threads,
            "MUR_TORCH_THREADS": torch_threads,
        }
        specs = [
            ("web", [python, manage, "runserver", addr] + ([] if reload else ["--noreload"]), {}),
            (
                "worker",
                celery + ["worker", "-Q", "ingest,forecast", "-c", "1", "-n", "worker@%h", "-l", loglevel],
                {"OMP_NUM_THREADS": "1", "MUR_TORCH_THREADS": "1"},
            ),
            ("trainer", celery + ["worker", "-Q", "train", "-c", "1", "-n", "trainer@%h", "-l", loglevel], trainer_env),
            ("beat", celery + ["beat", "-l", loglevel], {}),
        ]
        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            feed = ActivityFeed()
            for name, cmd, extra in specs:
                env = {**os.environ, **quiet, **extra}
                # The web server's stdout is its banner and system-check chatter, the workers' (at the
                # quiet default) only their "Warm shutdown" notices on Ctrl-C; errors and logs go to
                # stderr, which stays.
                stdout = subprocess.DEVNULL if name == "web" or loglevel == "warning" else None
                procs[name] = subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR, stdout=stdout)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Make Us Rich is running at http://{addr}/ (web, worker, trainer, beat). Ctrl-C stops all."
                )
            )
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                self.stdout.write("Running as root: fine to try it out here; a server runs it as its own user.")
            failed = None
            next_report = 0.0
            while not stopping:
                for name, p in procs.items():
                    if p.poll() is not None:
                        failed = (name, p.returncode)
                        stopping = True
                        break
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + REPORT_SECONDS
                    self._report(feed)
                time.sleep(0.5)
        finally:
            self._stop_all(procs)
        if failed:
            self.stderr.write(f"{failed[0]} exited with code {failed[1]}; stopped the others.")
            sys.exit(1)
        self.stdout.write("Stopped web, worker, trainer and beat.")

    def _report(self, feed: ActivityFeed) -> None:
        try:
            lines = feed.lines()
        except DatabaseError:  # the database busy or briefly away: the next round tells it
            return
        finally:
            close_old_connections()
        for line in lines:
            self.stdout.write(f"{timezone.now():%H:%M:%S} {line}")

    def _stop_all(self, procs):
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
