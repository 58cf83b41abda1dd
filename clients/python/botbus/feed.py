"""A SUB socket on the daemon's feed whose subscriptions are confirmed live.

ZeroMQ applies a SUB socket's subscriptions asynchronously; an event
published before they reach the daemon is not seen. ``feed.sync`` closes
that window without sleeping (docs/PROTOCOL.md, ``feed.sync``): subscriptions
travel in order, so once the marker of a topic subscribed after them
arrives, they are live.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import zmq

from .errors import RequestTimeout
from .wire import random_token, sync_topic, unpack

if TYPE_CHECKING:
    from .connection import Connection

SYNC_ROUND = 0.1
"""Seconds to wait for a marker before asking for another (a marker
published before the sync topic was applied is lost)."""


class FeedSocket:
    """A SUB socket on ``topics``, live once the constructor returns.

    Args:
        client: the command connection (for ``feed.sync``), whose
            ``feed_endpoint``, CURVE keys and context the socket uses.
        topics: feed topics, e.g. ``"ch/news/"``.
        receive_hwm: events ZeroMQ queues for this socket (0: no bound).
            A bound makes the daemon hold what this socket does not read,
            and drop it past its ``--max-feed-bytes``, as for a slow reader.
        receive_buffer: the TCP receive buffer in bytes (None: the system's).
    """

    def __init__(
        self, client: Connection, topics: Iterable[str], *, receive_hwm: int = 0, receive_buffer: int | None = None
    ) -> None:
        self._client = client
        self._socket = client.context.socket(zmq.SUB)
        self._socket.linger = 0
        self._socket.rcvhwm = receive_hwm
        if receive_buffer is not None:
            self._socket.rcvbuf = receive_buffer
        if client.curve is not None:
            client.curve.apply(self._socket)
        self.topics = list(topics)
        for topic in self.topics:
            self._socket.subscribe(topic)
        self._socket.connect(client.feed_endpoint)
        try:
            self._sync()
        except BaseException:
            self.close()
            raise

    def _sync(self) -> None:
        token = random_token("feed")
        marker = sync_topic(token)
        self._socket.subscribe(marker)
        limit = self._client.timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self._client.call("feed.sync", token=token)
            round_end = min(deadline, time.monotonic() + SYNC_ROUND)
            while (event := self._receive_raw(round_end - time.monotonic())) is not None:
                if event[0] == marker:
                    self._socket.unsubscribe(marker)
                    return
                # Events before the marker are dropped: whoever syncs reads
                # what was committed before from the log.
        raise RequestTimeout(
            f"the feed {self._client.feed_endpoint} did not confirm the subscription within {limit:g} s"
        )

    def receive(self, timeout: float | None) -> tuple[str, dict[str, Any]] | None:
        """The next event on the subscribed topics as (topic, event map),
        waiting up to ``timeout`` seconds (None: for ever); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            raw = self._receive_raw(left)
            if raw is None:
                return None
            topic, frame = raw
            try:
                event = unpack(frame)
            except ValueError:
                continue  # unreadable: a gap in channel_seq shows what it was
            if isinstance(event, dict):
                return topic, event

    def _receive_raw(self, timeout: float | None) -> tuple[str, bytes] | None:
        wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        if not self._socket.poll(wait_ms):
            return None
        parts = self._socket.recv_multipart(zmq.NOBLOCK)
        if len(parts) != 2:
            return ("", b"")
        return parts[0].decode(errors="replace"), parts[1]

    def close(self) -> None:
        """Closes the socket."""
        self._socket.close(linger=0)
