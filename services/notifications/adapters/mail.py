"""Alerts by e-mail over SMTP (aiosmtplib), with STARTTLS or TLS and authentication as the
deployment sets them. A message's ``Message-ID`` is derived from the alert and the
subscription, the same on every attempt, so a mail system can drop repeats."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
from pydantic import BaseModel, Field, SecretStr

from services.notifications.domain.mail_text import mail_text
from services.notifications.domain.subscriptions import Mailbox
from shared.contract import catalog as c
from shared.contract.envelope import CloudEvent

Alert = CloudEvent[c.Notice]
SMTP_OK = 250
MAIL_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
"""What a failed attempt raises: it is retried like a webhook that did not answer."""


class SmtpSettings(BaseModel):
    """Where mail goes out (``POLICYTRACK_NOTIFICATIONS_SMTP__HOST`` and so on); no host: no mail."""

    host: str | None = Field(default=None, description="the SMTP server; unset, mail subscriptions are refused")
    port: int = Field(default=587, ge=1, le=65535)
    security: str = Field(default="starttls", pattern="^(starttls|tls|none)$", description="starttls, tls or none")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(default="policytrack@localhost", description="the From address")
    timeout_seconds: float = Field(default=30.0, gt=0, description="how long one attempt may take, the server hanging")


class Mailer:
    def __init__(self, settings: SmtpSettings) -> None:
        assert settings.host is not None, "a mailer needs an SMTP host"
        self._settings = settings

    def message(self, mailbox: Mailbox, alert: Alert, subscription_id: str) -> EmailMessage:
        text = mail_text(alert.data, mailbox.language, subscription_id)
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = mailbox.address
        message["Subject"] = text.subject
        message["Date"] = format_datetime(alert.time)
        message["Message-ID"] = f"<{alert.data.alert_id}.{subscription_id}@policytrack>"
        message["X-Policytrack-Alert"] = alert.data.alert_id
        message.set_content(text.body, charset="utf-8")
        message["Content-Language"] = text.language  # after the content, which replaces Content-* headers
        return message

    async def send(self, mailbox: Mailbox, alert: Alert, subscription_id: str) -> int:
        """The server's 250; raises one of ``MAIL_ERRORS`` when it refuses, hangs or is away."""
        settings = self._settings
        await aiosmtplib.send(
            self.message(mailbox, alert, subscription_id),
            hostname=settings.host,
            port=settings.port,
            start_tls=settings.security == "starttls",
            use_tls=settings.security == "tls",
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            timeout=settings.timeout_seconds,
        )
        return SMTP_OK
