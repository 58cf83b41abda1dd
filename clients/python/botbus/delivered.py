"""Subscriptions the daemon delivers over the command connection, read from
its log: pushed (with a credit window) or pulled with ``fetch``, durable
(their cursor kept in the log, messages acknowledged) or not
(docs/PROTOCOL.md, "Delivered subscriptions").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .acks import AckedSeqs
from .messages import CaughtUp, Delivery, Fetched, Message

if TYPE_CHECKING:
    from .client import Client

MAX_WAIT_MS = 60_000
"""The longest ``wait_ms`` a fetch may ask for."""


class _Delivered:
    """What pushed and pulled subscriptions share: the subscribe reply and
    acknowledgements on the channel."""

    def __init__(self, client: Client, channel: str, durable: bool, reply: dict[str, Any]) -> None:
        self.channel = channel
        self.durable = durable
        self.resumed = bool(reply.get("resumed"))
        """An existing durable subscription went on from its floor."""
        self.start_after = int(reply.get("start_after", 0))
        """Messages with a higher seq are delivered."""
        self._client = client
        self._acked = AckedSeqs()

    def ack(self, *deliveries: Delivery | int) -> int:
        """Acknowledges these messages of the durable subscription
        (deliveries or seqs). Returns the subscription's floor."""
        seqs = [d.seq if isinstance(d, Delivery) else int(d) for d in deliveries]
        floor = self._client.ack(seqs=seqs, channel=self.channel)
        self._acked.acked(seqs, None, floor)
        return floor

    def ack_upto(self, seq: int) -> int:
        """Acknowledges every message of the subscription up to ``seq``."""
        floor = self._client.ack(upto=seq, channel=self.channel)
        self._acked.acked([], seq, floor)
        return floor

    def unsubscribe(self) -> bool:
        """Ends the subscription (and the bot's membership; a durable one's
        cursor with it). Returns whether there was one."""
        return bool(self._client.call("unsubscribe", channel=self.channel).get("unsubscribed"))

    def _delivery(self, item: dict[str, Any]) -> Delivery:
        return Delivery(
            Message.from_wire(item["message"]),
            int(item.get("deliveries", 1)),
            bool(item.get("redelivered")),
            self._ack_one if self.durable else None,
        )

    def _ack_one(self, seq: int) -> None:
        self.ack(seq)


class PushSubscription(_Delivered):
    """A subscription pushed to this connection: its history from the start
    position, one :class:`CaughtUp` marker, then live messages. A durable one
    gets at most ``credit`` unacknowledged messages at a time and redelivers
    what is not acknowledged within the daemon's ack timeout; acknowledge with
    ``delivery.ack()`` or :meth:`ack`. Create it with
    :meth:`Client.push_subscription`.
    """

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        durable: bool = False,
        credit: int | None = None,
        from_seq: int | None = None,
        from_time: int | None = None,
        last: int | None = None,
    ) -> None:
        # Watch before subscribing: pushes may follow the reply at once.
        client.watch_channel(channel)
        try:
            reply = client.call(
                "subscribe",
                channel=channel,
                deliver="push",
                durable=True if durable else None,
                credit=credit,
                from_seq=from_seq,
                from_time=from_time,
                last=last,
            )
        except BaseException:
            client.unwatch_channel(channel)
            raise
        super().__init__(client, channel, durable, reply)

    def get(self, timeout: float | None = None) -> Delivery | CaughtUp | None:
        """The next pushed message (or the marker), waiting up to ``timeout``
        seconds (None: for ever); None when nothing came in time."""
        while True:
            push = self._client.next_push(self.channel, timeout)
            if push is None:
                return None
            if push.get("push") == "caught_up":
                return CaughtUp(self.channel, int(push.get("seq", 0)))
            delivery = self._delivery(push)
            if self._acked.settled(delivery.seq):
                continue  # a repeat of a message acknowledged already
            return delivery

    def __iter__(self) -> Iterator[Delivery | CaughtUp]:
        while True:
            item = self.get(timeout=None)
            if item is not None:
                yield item

    def close(self) -> None:
        """Stops taking this subscription's pushes on this client. A durable
        subscription stays in the daemon (see :meth:`unsubscribe`)."""
        self._client.unwatch_channel(self.channel)

    def unsubscribe(self) -> bool:
        """Ends the subscription in the daemon and stops taking its pushes."""
        try:
            return super().unsubscribe()
        finally:
            self.close()


class PullSubscription(_Delivered):
    """A durable subscription read with :meth:`fetch`; fetched messages wait
    for acknowledgement as pushed ones do. Create it with
    :meth:`Client.pull_subscription`.
    """

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        from_seq: int | None = None,
        from_time: int | None = None,
        last: int | None = None,
    ) -> None:
        reply = client.call(
            "subscribe",
            channel=channel,
            durable=True,
            deliver="pull",
            from_seq=from_seq,
            from_time=from_time,
            last=last,
        )
        super().__init__(client, channel, True, reply)

    def fetch(self, max: int = 100, wait: float = 0.0) -> Fetched:
        """Up to ``max`` messages (1-1000), oldest first, deliveries whose ack
        timeout passed first. When none is there, the daemon waits up to
        ``wait`` seconds (at most 60) for one."""
        wait_ms = min(MAX_WAIT_MS, round(wait * 1000))
        # The daemon answers a waiting fetch at the end of its wait: allow for that.
        reply = self._client.call(
            "fetch",
            channel=self.channel,
            max=max,
            wait_ms=wait_ms or None,
            timeout=self._client.timeout + wait_ms / 1000,
        )
        return Fetched(
            [self._delivery(item) for item in reply["messages"]],
            int(reply["position"]),
            bool(reply["caught_up"]),
        )
