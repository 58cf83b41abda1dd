"""Holding a workflow run's lease while the executor works.

The lease belongs to the bot, not the connection (docs/PROTOCOL.md, "Leases
and crash detection"), so a thread of its own with a connection of its own
renews it with ``run.heartbeat`` while a step's handler runs for longer than
the lease; the heartbeat replies also say when another bot asked to cancel.
"""

from __future__ import annotations

import threading

from .client import Client
from .errors import ReplyError, RequestTimeout


class LeaseKeeper:
    """Sends ``run.heartbeat`` every ``interval`` seconds from a thread.

    Attributes:
        beats: heartbeats the daemon accepted.
        cancel_requested: set once a heartbeat reply carries ``cancel_requested``.
        lost: set, with :attr:`error`, once a heartbeat is refused (the run is
            no longer running with this bot holding its lease).
    """

    def __init__(self, client: Client, run_id: str, interval: float) -> None:
        if client.bot is None:
            raise ValueError("the lease is the bot's: hello(bot) first")
        self.run_id = run_id
        self.interval = interval
        self.beats = 0
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()
        self.error: ReplyError | None = None
        self._stop = threading.Event()
        # Its own connection: a ZeroMQ socket belongs to one thread. It acts
        # as the bot without taking its pushes, which stay with `client`.
        self._connection = Client(
            client.command_endpoint,
            client.feed_endpoint,
            timeout=client.timeout,
            curve=client.curve,
            context=client.context,
        )
        try:
            self._connection.hello(client.bot, pushes=False)
        except BaseException:
            self._connection.close()
            raise
        self._thread = threading.Thread(target=self._renew, name=f"botbus-lease-{run_id}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                reply = self._connection.call("run.heartbeat", run_id=self.run_id)
            except RequestTimeout:
                continue  # the next beat may get through; the lease outlasts a few intervals
            except ReplyError as e:
                self.error = e
                self.lost.set()
                return
            self.beats += 1
            if reply.get("cancel_requested"):
                self.cancel_requested.set()

    def stop(self) -> None:
        """Stops renewing (waits for a heartbeat in flight) and closes the connection."""
        self._stop.set()
        self._thread.join()
        self._connection.close()
