"""``python -m services.audit``: run the audit service until SIGTERM."""

from __future__ import annotations

import sys

from services.audit.bootstrap import bootstrap
from services.audit.entrypoints.app import create_app
from services.audit.settings import AuditSettings
from shared.http.service import run_service

if __name__ == "__main__":
    sys.exit(run_service("audit", AuditSettings(), bootstrap, create_app))
