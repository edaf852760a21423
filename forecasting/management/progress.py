"""tqdm progress bars for management commands (shown on a terminal, quiet in logs)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    def __init__(self, desc: str, unit: str = "candle", disable: bool | None = None):
        self.bar = tqdm(
            desc=desc,
            unit=unit,
            unit_scale=True,
            file=sys.stderr,
            disable=(not sys.stderr.isatty()) if disable is None else disable,
        )

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
