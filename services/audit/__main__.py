"""``python -m services.audit``: run the audit service until SIGTERM."""

from __future__ import annotations

import sys

from services.audit.app import create_app
from services.audit.bootstrap import bootstrap
from services.audit.settings import AuditSettings
from shared.auth import InsecureConfiguration
from shared.http.service import serve
from shared.logging import configure_logging
from shared.process import run


def main() -> int:
    settings = AuditSettings()
    configure_logging(settings.runtime, service="audit")
    try:
        runtime = bootstrap(settings)
    except (InsecureConfiguration, FileNotFoundError, ValueError) as error:
        print(f"audit: {error}", file=sys.stderr)
        return 2
    run(serve(create_app(runtime), settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
