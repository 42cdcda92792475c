"""``python -m services.tasks``: run the tasks service until SIGTERM."""

from __future__ import annotations

import sys

from services.tasks.bootstrap import bootstrap
from services.tasks.entrypoints.app import create_app
from services.tasks.settings import TasksSettings
from shared.http.service import run_service

if __name__ == "__main__":
    sys.exit(run_service("tasks", TasksSettings(), bootstrap, create_app))
