"""``make run`` survives a crash: a service killed with SIGKILL is started again by the
supervisor, the others and the broker go on; only SIGTERM (or Ctrl-C) stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import Broker, eventually, free_port, resolved


async def test_a_killed_service_is_started_again_and_nothing_else_stops(spare_broker: Broker, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("tasks", "notifications", "audit", "web")}
    env = {
        **spare_broker.env,
        "POLICYTRACK_DATA_DIR": str(tmp_path / "data"),
        "POLICYTRACK_KEYS_DIR": str(tmp_path / "keys"),
        **spare_broker.service_env(),
        **{f"POLICYTRACK_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    status = tmp_path / "data" / "run" / "status.json"
    up = subprocess.Popen(
        [sys.executable, "-m", "policytrack.cli", "up", "--no-demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "up.log").open("wb"),
    )
    try:

        def services() -> dict[str, dict[str, Any]] | None:
            if not status.exists():
                return None
            return {s["name"]: s for s in orjson.loads(status.read_bytes())["services"]}

        before = await eventually(lambda: resolved(services()), timeout=180, what="the system up")
        os.kill(before["tasks"]["pid"], signal.SIGKILL)

        async def restarted() -> dict[str, Any] | None:
            now = services() or {}
            tasks = now.get("tasks", {})
            if tasks.get("restarts") != 1 or not tasks.get("running"):
                return None
            try:
                ready = httpx.get(f"http://127.0.0.1:{ports['tasks']}/readyz", timeout=2)
            except httpx.TransportError:
                return None
            return now if ready.status_code == 200 else None

        after = await eventually(restarted, timeout=120, what="tasks started again and ready")
        assert after["tasks"]["last_exit"] == -signal.SIGKILL
        for name in ("notifications", "audit", "web"):
            assert after[name]["pid"] == before[name]["pid"] and after[name]["restarts"] == 0, name
        assert up.poll() is None, "the supervisor keeps running"
        shown = subprocess.run(
            [sys.executable, "-m", "policytrack.cli", "status", "--json"], env=env, capture_output=True, timeout=60
        )
        status_now = orjson.loads(shown.stdout)
        assert status_now["dashboard"] == f"http://127.0.0.1:{ports['web']}/"
        assert {row["service"]: row["ready"] for row in status_now["services"]} == dict.fromkeys(ports, True)
        assert f"看板地址：http://127.0.0.1:{ports['web']}/" in (tmp_path / "up.log").read_text()
        assert spare_broker.script("status", check=False).returncode == 0, "the broker keeps running"
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(90)
    assert spare_broker.script("status", check=False).returncode != 0, "SIGTERM stops everything, the broker last"
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            raise AssertionError(f"something still answers on {port}")
        except httpx.TransportError:
            pass
