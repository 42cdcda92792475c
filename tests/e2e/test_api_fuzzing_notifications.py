"""Schemathesis over the notifications service's API (``fuzzing.py`` says how).

The alert stream never ends, so it is left out here; what it reads (Last-Event-ID, ``from``)
is checked in ``tests/unit/test_alert_stream_positions.py`` and its behaviour end to end in
``tests/integration/test_alert_stream.py``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import NDRC, ServiceFactory
from tests.e2e.fuzzing import assert_clean, links_covered, schemathesis


def test_the_notifications_api(service_factory: ServiceFactory, tmp_path: Path) -> None:
    notifications = service_factory("notifications").start()
    made = httpx.post(
        f"{notifications.url}/v1/subscriptions",
        headers=NDRC,
        json={"webhook_url": "http://127.0.0.1:9/hooks"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    assert_clean(schemathesis(notifications, NDRC, tmp_path))
    assert_clean(schemathesis(notifications, NDRC, tmp_path, {"subscription_id": made.json()["id"]}))
    real = {"/v1/subscriptions": {"webhook_url": "http://127.0.0.1:9/hooks"}}
    chains = schemathesis(notifications, NDRC, tmp_path, stateful=True, body=real)
    assert_clean(chains)
    # A subscription made, then read and ended.
    assert links_covered(chains) >= 2, chains.stdout[-3000:]
