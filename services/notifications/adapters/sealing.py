"""Seals webhook secrets and URLs before they go on the log (events are kept forever)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class Sealer:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
