"""A one-line progress display for long backfills: done/total, rate and ETA, redrawn at most 4 times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, min_total: int = 0):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.enabled = total >= min_total and (stream is not None or self.stream.isatty())
        self.start = self.last = time.monotonic()

    def __call__(self, advanced: int) -> None:
        self.done += advanced
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.25 or self.done >= self.total):
            self.last = now
            self.stream.write(f"\r{self.render(now)}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()

    def render(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else 0.0
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * 20)
        return (
            f"{self.label} [{bar:<20}] {self.done:,}/{self.total:,} msgs {share:4.0%} "
            f"{rate:,.0f} msg/s ETA {_clock(eta)}"
        )
