"""Schemathesis over the audit service's API (``fuzzing.py`` says how), over a trail that holds
one aggregate of each kind."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NAO, ServiceFactory
from tests.e2e.fuzzing import assert_clean, links_covered, schemathesis, seeded


def test_the_audit_api(service_factory: ServiceFactory, tmp_path: Path) -> None:
    _, ids = seeded(service_factory)
    audit = service_factory("audit").start()
    # A page that waits for news (``wait``, up to 30 s) would only make the fuzzer sleep: it is
    # not waited for here; its bounds and what it returns are checked in test_audit_service.
    assert_clean(schemathesis(audit, NAO, tmp_path, {"wait": "0"}))
    assert_clean(schemathesis(audit, NAO, tmp_path, {"wait": "0", "task_id": ids["task_id"]}))
    chains = schemathesis(audit, NAO, tmp_path, {"wait": "0"}, stateful=True)
    assert_clean(chains)
    # An entry of the trail found, then its act and what proves who wrote it.
    assert links_covered(chains) >= 1, chains.stdout[-3000:]
