"""``python -m services.web``: run the web dashboard until SIGTERM."""

from __future__ import annotations

import sys

from services.web.bootstrap import bootstrap
from services.web.entrypoints.app import create_app
from services.web.settings import WebSettings
from shared.http.service import run_service

if __name__ == "__main__":
    sys.exit(run_service("web", WebSettings(), bootstrap, create_app))
