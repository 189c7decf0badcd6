"""Named crash points for crash-safety tests: ``HUBMIRROR_FAILPOINTS=sync.before_publish`` makes the
process kill itself with SIGKILL when it reaches that point. Off (one dict lookup) unless the variable is set.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    armed = os.environ.get("HUBMIRROR_FAILPOINTS")
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
