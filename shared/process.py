"""Process-wide set-up every service entry point (and benchmark) runs once at start."""

from __future__ import annotations

import gc
from collections.abc import Coroutine
from typing import Any

import uvloop


def tune_garbage_collector() -> None:
    """Collect less often: each event makes several short-lived models, and the default
    threshold (700 allocations) has the collector scan long-lived state thousands of times
    a second. What was imported before this call is frozen out of collection altogether."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run a service's main coroutine on uvloop (what uvicorn would pick on its own)."""
    tune_garbage_collector()
    return uvloop.run(main)
