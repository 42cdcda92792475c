"""How every Kafka client of the project connects: the broker's address and this process's
principal, authenticated with SASL (SCRAM-SHA-512 by default), over TLS when asked."""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.settings import KafkaSettings


class MissingCredentials(RuntimeError):
    """No password for the principal: neither in the settings nor in the credentials folder."""


def password_of(kafka: KafkaSettings) -> str:
    if kafka.username is None:
        raise MissingCredentials("no Kafka principal: set POLICYTRACK_KAFKA_USERNAME")
    if kafka.password is not None:
        return kafka.password.get_secret_value()
    path = kafka.credentials_folder / kafka.username
    try:
        return path.read_text().strip()
    except OSError as error:
        raise MissingCredentials(
            f"no password for Kafka principal {kafka.username!r}: set POLICYTRACK_KAFKA_PASSWORD or create "
            f"{path} (deploy/kafka.sh start generates it)"
        ) from error


@cache
def _tls(cafile: Path | None) -> ssl.SSLContext:
    context: ssl.SSLContext = create_ssl_context(cafile=str(cafile) if cafile else None)
    return context


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments every aiokafka producer, consumer and admin client is made with."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "request_timeout_ms": kafka.request_timeout_ms,
        "security_protocol": kafka.security_protocol,
        "sasl_mechanism": kafka.sasl_mechanism,
        "sasl_plain_username": kafka.username,
        "sasl_plain_password": password_of(kafka),
    }
    if kafka.security_protocol == "SASL_SSL":
        options["ssl_context"] = _tls(kafka.ssl_cafile)
    return options
