"""Process-wide set-up every service entry point (and benchmark) runs once at start, and the
processes a service starts to use the other cores."""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, NoReturn

import uvloop

GIL_SWITCH_SECONDS = 0.001
YOUNG_COLLECTION_EVERY = 500_000
"""Allocations between two collections of the youngest objects (docs/performance.md)."""


def tune_interpreter() -> None:
    """Collect less often: each event makes several short-lived models, and the default
    threshold (700 allocations) has the collector scan long-lived state thousands of times
    a second. A collection of the youngest objects scans those still alive when it runs, in a
    reader mostly the records of the fetch it is reading, so one every ``YOUNG_COLLECTION_EVERY``
    allocations does a tenth of the work of one every 50,000 (a rebuild of 600,000 events spent
    0.06 s in them against 0.8 s; docs/performance.md). What was imported before this call is frozen
    out of collection altogether.

    And let a waiting thread have the interpreter after 1 ms instead of 5: the database's
    thread (aiosqlite) waits for the event loop's thread to let go after every statement,
    and at the default each such hop can cost 5 ms under load. Measured (bench, small scale,
    two runs each): audit export 54-55k entries/s at 5 ms, 69-80k at 1 ms, 80k at 0.5 ms;
    ingest 14-16.5k, 16.5-18k and 13-14k (more forced switches between its three threads)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 50, 100)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run a service's main coroutine on uvloop (what uvicorn would pick on its own)."""
    tune_interpreter()
    return uvloop.run(main)


def leave(status: int) -> NoReturn:
    """Ends this process with ``status`` at once, as a service asked to stop does once its shutdown
    ran: its processes apart are ended whatever they are doing (multiprocessing's exit handler
    would wait for them), the exit handlers run (multiprocessing's removes the folder of a
    process server) and the output is flushed. The rest of Python's exit (joining idle threads,
    freeing the heap) is skipped: it made every stop of a service 0.1-0.5 s longer."""
    for child in multiprocessing.active_children():
        child.terminate()
    atexit._run_exitfuncs()  # the public way, raising SystemExit, also runs that rest
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


@contextmanager
def processes_apart(
    workers: int,
    preload: tuple[str, ...] = (),
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A pool of processes for work on the other cores, ended on the way out whatever they are
    doing (a failure here makes their work moot). Each process runs ``initializer(*initargs)``
    first: how it is handed what cannot travel with a job (memory shared with this process).

    Forked from a server process (multiprocessing's forkserver), not from this one, which runs an
    event loop and threads (aiokafka's, SQLite's); the server imports the ``preload`` modules
    once, when the service first asks for processes, and every later process is a fork of it.
    Spawned afresh, each process imported them itself: about 1.2 s of CPU a process, three
    processes for each verification of a long trail (measured: 28-30k entries/s against 32-35k,
    three verifications of 200,000 entries in a row)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["shared.process", *preload])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_tuned_then, initargs=(initializer, *initargs))
    try:
        yield pool
    finally:
        for process in list(pool._processes.values()):  # 3.14's terminate_workers(), before it
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)


def _tuned_then(initializer: Callable[..., object] | None, *initargs: Any) -> None:
    """Every process apart collects and switches threads as the service's own process does (a
    fork of the server starts with the interpreter's defaults), then runs its initializer."""
    tune_interpreter()
    if initializer is not None:
        initializer(*initargs)


def shared_counts(count: int) -> Any:
    """``count`` integers in memory shared with the processes apart that are handed it through
    their initializer, each written by one of them and read here (how far their work has got)."""
    return multiprocessing.get_context("forkserver").RawArray("q", count)
