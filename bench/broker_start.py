"""What a fresh single-node broker costs the machine to start and to keep idle, in CPU seconds,
with the JVM options ``make run`` uses (G1) and with those the tests ask for (C1 only, serial
GC): the tests start a score of brokers on two cores that their services share.

    .venv/bin/python -m bench.broker_start [--rounds 3] [--idle 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.results import Results, Row, scaled
from shared.settings import PROJECT_ROOT
from tests.conftest import TEST_BROKER_JVM, broker_env, free_block

SCRIPT = PROJECT_ROOT / "deploy" / "kafka.sh"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_start(java_options: str, idle: float) -> tuple[float, float, float]:
    """CPU seconds of the start script's own work, of the broker up to ready, and of idling."""
    folder = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    env = {**broker_env(free_block(0, 1), folder / "kafka"), "POLICYTRACK_KAFKA_JAVA_OPTIONS": java_options}
    try:
        before = children_cpu()
        subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True, capture_output=True)
        script = children_cpu() - before
        pid = int((folder / "kafka" / "kafka.pid").read_text())
        ready = cpu_of(pid)
        time.sleep(idle)
        idling = cpu_of(pid) - ready
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=True, capture_output=True)
        return script, ready, idling
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mean_start(java_options: str, idle: float, rounds: int) -> tuple[float, float, float]:
    runs = [one_start(java_options, idle) for _ in range(rounds)]
    script, ready, idling = (sum(column) / rounds for column in zip(*runs, strict=True))
    return script, ready, idling


def main(rounds: int, idle: float) -> None:
    results = Results("broker_start")
    print(f"a fresh broker started {rounds} times per JVM option set, then idle {idle:g} s (CPU seconds, mean):")
    g1, tests = mean_start("", idle, rounds), mean_start(TEST_BROKER_JVM, idle, rounds)
    for index, what in enumerate(
        ("the start script's tools", "the broker, up to ready", f"the broker, {idle:g} s idle")
    ):
        results.add(Row(f"{what}: G1", g1[index], "CPU s"))
        results.add(Row(f"{what}: C1 + serial GC", tests[index], "CPU s", baseline=g1[index], lower_is_better=True))
    whole_g1, whole_tests = sum(g1), sum(tests)
    results.add(Row("all of it: C1 + serial GC", whole_tests, "CPU s", baseline=whole_g1, lower_is_better=True))
    results.note(f"{whole_g1 - whole_tests:.1f} CPU s saved per broker start and {idle:g} s of idling")
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=scaled(3, 1))
    parser.add_argument("--idle", type=float, default=20.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.idle)
