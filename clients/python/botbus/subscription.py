"""Following a channel on the feed without gaps or duplicates.

The recipe of docs/PROTOCOL.md, "Catching up without gaps or duplicates":
subscribe a SUB socket to the channel's topic and confirm it with
``feed.sync``; read ``history`` after the last seq delivered until ``more`` is
false; then read the feed, dropping what history delivered already, and
when ``channel_seq`` jumps (the feed is fire-and-forget: a subscriber that
falls behind loses events, a reconnect loses what was published meanwhile),
read history after the last seq delivered before going on.

With a client of several nodes (``other_nodes``), a feed quiet for the
client's timeout is checked with a ``ping``, which moves the client to
another node if its node stopped answering; the subscription then follows
it: a new feed socket there, confirmed, and history after the last seq
delivered, so it goes on with no gap and no duplicate.

Limitation (as in the C++ client): a loss is seen when a later message
arrives, so messages lost at the very tail show up once the channel moves on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import NotFound
from .feed import FeedSocket
from .messages import CaughtUp, HistoryPage, Message
from .wire import channel_topic

if TYPE_CHECKING:
    from .client import Client

HISTORY_PAGE = 1000
"""Messages asked for per history page (the protocol's most)."""

Item = Message | CaughtUp


class Subscription:
    """An iterator over one channel's messages, in seq order.

    It yields the history after ``after`` (every message for 0; none given:
    only messages published from now on), then one :class:`CaughtUp` marker,
    then live messages. Use it as an iterator (blocks for the next item) or
    call :meth:`next` with a timeout. Create it with :meth:`Client.subscribe`.

    Args:
        client: the command connection (history, ``feed.sync``); its feed
            endpoint and CURVE keys serve the SUB socket.
        channel: the channel to follow.
        after: deliver messages whose seq is above this; None: from now.
        receive_hwm, receive_buffer: the SUB socket's bounds
            (:class:`~botbus.feed.FeedSocket`); the defaults read ahead
            without bound, as a subscriber that wants no gaps should.

    Attributes:
        last_seq: the seq of the last message delivered (or the start).
        gaps: how many times live ``channel_seq`` jumped and history filled in.
        repaired: messages delivered from history to fill those gaps.
    """

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        after: int | None = None,
        receive_hwm: int = 0,
        receive_buffer: int | None = None,
    ) -> None:
        self.channel = channel
        self.last_seq = 0
        self.gaps = 0
        self.repaired = 0
        self._client = client
        self._topic = channel_topic(channel)
        self._last_channel_seq: int | None = None  # of the last message delivered, once known
        self._ready: deque[Item] = deque()
        self._catching_up = True  # history pages are left before the marker
        self._feed_options = {"receive_hwm": receive_hwm, "receive_buffer": receive_buffer}
        self._generation = client.node_generation
        self._feed = FeedSocket(client, [self._topic], receive_hwm=receive_hwm, receive_buffer=receive_buffer)
        try:
            if after is not None:
                self.last_seq = after
            else:
                self._start_from_now()
        except BaseException:
            self._feed.close()
            raise

    def _start_from_now(self) -> None:
        # After the channel's newest message, whose channel_seq is the
        # baseline live messages continue from.
        try:
            newest = self._client.history(self.channel, order="desc", limit=1).messages
        except NotFound:
            return  # a channel yet to be created starts at 0
        if newest:
            self.last_seq = newest[0].seq
            self._last_channel_seq = newest[0].channel_seq

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        item = self.next(timeout=None)
        assert item is not None  # no timeout: next() waits until one comes
        return item

    def next(self, timeout: float | None) -> Item | None:
        """The next message (or the marker), waiting up to ``timeout``
        seconds (None: for ever); None when nothing came in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            if self._catching_up:
                self._read_history_page()
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._client.can_fail_over:
                # Quiet for a whole timeout: is the node still there?
                quiet = self._client.timeout if left is None else min(left, self._client.timeout)
                event = self._feed.receive(quiet)
                if event is None:
                    if not self._follow_client() and deadline is not None and time.monotonic() >= deadline:
                        return None
                    continue
            else:
                event = self._feed.receive(left)
                if event is None:
                    return None
            topic, fields = event
            if topic == self._topic and fields.get("event") == "message":
                self._accept_live(Message.from_wire(fields))
        return self._ready.popleft()

    def _follow_client(self) -> bool:
        """Pings the node (the client moves on if it is gone); after a move,
        opens the feed on the new node and reads what was missed. Returns
        whether the subscription moved."""
        if self._client.node_generation == self._generation:
            self._client.ping()
        if self._client.node_generation == self._generation:
            return False
        self._feed.close()
        self._feed = FeedSocket(self._client, [self._topic], **self._feed_options)  # type: ignore[arg-type]
        self._generation = self._client.node_generation
        self._read_history()  # what was published while the feed was on the old node
        return True

    def _accept_live(self, message: Message) -> None:
        if message.seq <= self.last_seq:
            return  # delivered from history already
        if self._last_channel_seq is None or message.channel_seq != self._last_channel_seq + 1:
            known_gap = self._last_channel_seq is not None
            repaired = self._read_history()
            if known_gap:
                self.gaps += 1
                self.repaired += repaired
            if message.seq <= self.last_seq:
                return  # history had it too
        self._deliver(message)

    def _read_history_page(self) -> None:
        # One page at a time: a long history is handed out as it is read,
        # not held whole.
        try:
            page = self._client.history(self.channel, after=self.last_seq, limit=HISTORY_PAGE)
        except NotFound:
            page = HistoryPage([], more=False)  # no such channel yet: nothing stored
        for message in page.messages:
            self._deliver(message)
        if not page.more:
            self._catching_up = False
            self._ready.append(CaughtUp(self.channel, self.last_seq))

    def _read_history(self) -> int:
        """Delivers every stored message after ``last_seq``; returns how many."""
        count = 0
        try:
            for page in self._client.history_pages(self.channel, after=self.last_seq, limit=HISTORY_PAGE):
                for message in page.messages:
                    self._deliver(message)
                    count += 1
        except NotFound:
            pass  # no such channel yet: nothing stored
        return count

    def _deliver(self, message: Message) -> None:
        self.last_seq = message.seq
        self._last_channel_seq = message.channel_seq
        self._ready.append(message)

    def close(self) -> None:
        """Stops following the channel (closes the feed socket)."""
        self._feed.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
