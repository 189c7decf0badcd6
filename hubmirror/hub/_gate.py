"""Process-wide pacing of requests to upstream: a request budget per 5-minute window and 429 pauses.

Shared by every worker thread of a client; it knows nothing of HTTP beyond "counted or not".
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque

from ..errors import Interrupted

logger = logging.getLogger(__name__)

BUDGET_WINDOW = 300.0


class RateGate:
    """Process-wide pacing shared by every worker: a 429 pauses everyone, and at most ``budget``
    requests go to the API origin in any 5-minute window (``window`` seconds; tests shorten it)."""

    def __init__(self, budget: int | None, window: float = BUDGET_WINDOW, stop: threading.Event | None = None) -> None:
        self.budget = budget
        self.window = window
        self.stop = stop or threading.Event()  # set: waiting ends with Interrupted (SIGTERM stays prompt)
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._not_before = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self, counted: bool, stop: threading.Event | None = None) -> None:
        """Return when a request may go; ``stop`` (default: the gate's) ends a wait with Interrupted."""
        stop = stop or self.stop
        while True:
            with self._lock:
                now = time.monotonic()
                delay = self._not_before - now
                if delay <= 0 and counted and self.budget:
                    while self._sent and self._sent[0] <= now - self.window:
                        self._sent.popleft()
                    if len(self._sent) >= self.budget:
                        delay = self._sent[0] + self.window - now
                if delay <= 0:
                    if counted:
                        self._sent.append(now)
                    return
            # A long wait is news in a service log: say why the sync seems to stand still.
            (logger.info if delay > 1 else logger.debug)(
                "rate limit: waiting %.1fs (upstream.max_requests_per_5min, or a 429's Retry-After)", delay
            )
            if stop.wait(min(delay, 5.0)):
                raise Interrupted("stopped on request while waiting for the upstream rate limit")


_shared: weakref.WeakValueDictionary[tuple[str, int | None], RateGate] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_gate(endpoint: str, budget: int | None) -> RateGate:
    """The gate of every client of ``endpoint`` alive in this process (serve's pull-through and a scheduled
    sync in ``hubmirror run`` share one budget and one 429 pause); a new one once none is alive."""
    with _shared_lock:
        gate = _shared.get((endpoint, budget))
        if gate is None:
            gate = _shared[(endpoint, budget)] = RateGate(budget)
        return gate
