"""Test hook (``CITYHUB_CRASH_POINT=STEP[:N]``): die like ``kill -9`` at an exact step of landing or compaction.

Kept apart from the modules that call it so that landing and compaction can both use it without importing each
other. Never set the variable in production.
"""

from __future__ import annotations

import os
import signal

from infra.settings import Settings

_CRASH_COUNTS: dict[str, int] = {}


def crash_hook(settings: Settings, step: str) -> None:
    """Kill this process with SIGKILL the N-th time it reaches ``step`` (N = 1 unless given)."""
    if not settings.crash_point:
        return
    wanted, _, nth = settings.crash_point.partition(":")
    if wanted != step:
        return
    _CRASH_COUNTS[step] = _CRASH_COUNTS.get(step, 0) + 1
    if _CRASH_COUNTS[step] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
