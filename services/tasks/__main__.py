"""``python -m services.tasks``: run the tasks service until SIGTERM."""

from __future__ import annotations

import sys

from services.tasks.app import create_app
from services.tasks.bootstrap import bootstrap
from services.tasks.settings import TasksSettings
from shared.auth import InsecureConfiguration
from shared.http.service import serve
from shared.logging import configure_logging
from shared.process import run


def main() -> int:
    settings = TasksSettings()
    configure_logging(settings.runtime, service="tasks")
    try:
        runtime = bootstrap(settings)
    except InsecureConfiguration as error:
        print(f"tasks: {error}", file=sys.stderr)
        return 2
    run(serve(create_app(runtime), settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
