"""``python -m services.notifications``: run the notifications service until SIGTERM."""

from __future__ import annotations

import sys

from services.notifications.bootstrap import bootstrap
from services.notifications.entrypoints.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.http.service import run_service

if __name__ == "__main__":
    sys.exit(run_service("notifications", NotificationsSettings(), bootstrap, create_app))
