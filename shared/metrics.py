"""Prometheus metrics that every service exposes on ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_HANDLED = Counter(
    "policytrack_events_handled_total",
    "Records a consumer handled or dead-lettered and committed",
    ["consumer", "topic"],
)
DEAD_LETTERED = Counter(
    "policytrack_dead_lettered_total", "Records sent to the dead-letter topic", ["consumer", "topic", "cause"]
)
HANDLER_RETRIES = Counter(
    "policytrack_handler_retries_total", "Handler attempts that failed and were retried", ["consumer"]
)
CONSUMER_LAG = Gauge("policytrack_consumer_lag", "Records not yet handled, per consumer", ["consumer"])
RECORDS_REFUSED = Counter(
    "policytrack_records_refused_total",
    "Records a reader refused because their writer's proof failed (never handled)",
    ["reader", "topic"],
)
