"""The weekly reports' sender in its own process, for the SIGKILL test: its clock says Monday
07:00 after the seeded week, so its first check sends that week's report.

python -m tests.reports.sender_child DB_URL SMTP_PORT CAFILE DIALPLANS_DIR
"""

import logging
import sys
from pathlib import Path

from twisted.internet import reactor

from callrouter.store.db import Database
from tests.reports.weekly_support import DUE, clock_at, dialplans, smtp_settings, weekly_service


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    db_url, port, cafile, folder = sys.argv[1:5]
    service = weekly_service(Database.from_url(db_url), dialplans(Path(folder)),
                             smtp_settings(int(port), cafile, timeout_s=600.0), clock_at(DUE))
    reactor.callWhenRunning(service.startService)
    reactor.run()


if __name__ == "__main__":
    main()
