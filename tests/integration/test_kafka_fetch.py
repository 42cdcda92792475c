"""A fresh checkout's test workers start their brokers at once, and the first start resolves
Kafka from Maven Central: the starts must share one complete library, not tear down each
other's (a second checkout's suite failed 98 tests that way: 'Could not find or load main class
kafka.tools.StorageTool')."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.settings import PROJECT_ROOT


def test_starts_that_resolve_kafka_at_once_share_one_complete_library(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "deploy" / "kafka").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "kafka.sh", checkout / "deploy" / "kafka.sh")
    shutil.copy(PROJECT_ROOT / "deploy" / "kafka" / "pom.xml", checkout / "deploy" / "kafka" / "pom.xml")
    script = str(checkout / "deploy" / "kafka.sh")
    fetches = [subprocess.Popen(["bash", script, "fetch"], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [(fetch.wait(timeout=600), fetch.communicate()[1]) for fetch in fetches]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    [library] = (checkout / ".cache" / "kafka").glob("*/lib")
    assert (library / ".complete").is_file() and list(library.glob("kafka_2.13-*.jar")), sorted(library.iterdir())
    assert sum("resolving Apache Kafka" in said for _, said in outcomes) == 1, "one resolved, the others waited"
    assert [p.name for p in library.parent.iterdir() if p.is_dir()] == ["lib"], "no half-made library is left"
