"""A service process is ready when *it* answers: another process listening on its port (one
that took the port while it restarted, say) is never taken for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from policytrack.processes import NotReady, ServiceProcess
from tests.conftest import free_port, http_server


class AlwaysReady(BaseHTTPRequestHandler):
    """Another service: ready, and alive, whatever it is asked."""

    def do_GET(self) -> None:
        body = b'{"ready": true, "status": "ok", "pid": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def taken_port() -> Iterator[int]:
    with http_server(AlwaysReady, free_port()) as server:
        yield server.server_port


@pytest.mark.parametrize("waits_for", ["ready", "alive"])
def test_a_service_whose_port_another_process_holds_is_never_taken_for_ready(
    taken_port: int, tmp_path: Path, waits_for: str
) -> None:
    # This process exits soon (it is given no configuration): before it does, only its own
    # answer on the port may count, and the other's "ready" must not.
    env = {**os.environ, "POLICYTRACK_DATA_DIR": str(tmp_path / "data"), "POLICYTRACK_TASKS_PORT": str(taken_port)}
    service = ServiceProcess("tasks", taken_port, env, tmp_path / "tasks.log")
    try:
        with pytest.raises(NotReady):
            service.start(wait=False)
            if waits_for == "ready":
                service.wait_ready(timeout=30)
            else:
                service.wait_alive(timeout=30)
    finally:
        service.kill()


def test_a_service_s_port_is_never_one_the_kernel_gives_an_outgoing_connection() -> None:
    # A stopped service starts again on its port; were the port in the ephemeral range, the near
    # end of any connection opened meanwhile could hold it, and the restart would be refused.
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(200)]
    assert not [port for port in ports if low <= port <= high]
    assert len(set(ports)) == len(ports), "a port is handed out once, so no other service restarts on it"
