"""A process that leaves as a stopped service does (``shared.process.leave``) ends at once, with
the status it was given, whatever its processes apart are doing, and leaves nothing behind: no
process server's folder in the temporary folder, no process apart still running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

SCRIPT = """
import time
from shared.process import leave, processes_apart

if __name__ == "__main__":
    with processes_apart(1) as pool:
        pool.submit(time.sleep, 0).result()  # the server and its process are up
        pool.submit(time.sleep, 600)
        leave(143)
"""


def test_leaving_ends_the_processes_apart_at_work_and_removes_their_servers_folder(short_tmp: Path) -> None:
    scratch = str(short_tmp)
    leaving = subprocess.Popen([sys.executable, "-c", SCRIPT], env={**os.environ, "TMPDIR": scratch})
    try:
        status = leaving.wait(timeout=20)
    except subprocess.TimeoutExpired:
        status = None
    # Its server and resource tracker end on their own once they see it gone, a moment later.
    _, left = psutil.wait_procs(started_with(scratch), timeout=10)
    for process in left:
        process.kill()
    assert status is not None, "still waiting after 20 s for a process apart's job instead of ending it"
    assert status == 143
    assert list(short_tmp.iterdir()) == []
    assert not left, f"outlived the process that started them: {[p.pid for p in left]}"


def started_with(scratch: str) -> list[psutil.Process]:
    """The processes (the one started, its server, their processes apart) given this TMPDIR."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("TMPDIR") == scratch and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
