"""The botbus client: the protocol's ops as methods, and the consumers
(subscriptions, mailbox) built on them, over one command connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import zmq

from .connection import DEFAULT_COMMAND_ENDPOINT, DEFAULT_FEED_ENDPOINT, MAILBOX, Connection, Reply
from .curve import CurveKeys
from .delivered import PullSubscription, PushSubscription
from .errors import BotbusError, RequestTimeout
from .mailbox import Mailbox
from .messages import HelloReply, HistoryPage, Message, Published, Sent
from .subscription import Subscription
from .wire import random_token


class Client(Connection):
    """A bot's connection to botbusd (see :class:`~botbus.connection.Connection`
    for requests, replies and timeouts).

    Args:
        command_endpoint: the daemon's command (ROUTER) endpoint.
        feed_endpoint: the daemon's feed (XPUB) endpoint, for :meth:`subscribe`
            and the workflow executor.
        timeout: seconds to wait for each reply.
        curve: this bot's keys, for a daemon run with ``--auth curve``.
        context: the ZeroMQ context (default: the process's shared one).
        other_nodes: the cluster's other nodes, (command endpoint, feed
            endpoint) each, tried in turn when the node in use stops
            answering (:meth:`~botbus.connection.Connection.call`; the
            ``hello`` is said again there, subscriptions follow).
    """

    def __init__(
        self,
        command_endpoint: str = DEFAULT_COMMAND_ENDPOINT,
        feed_endpoint: str = DEFAULT_FEED_ENDPOINT,
        *,
        timeout: float = 5.0,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,  # type: ignore[type-arg]
        other_nodes: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(
            command_endpoint, feed_endpoint, timeout=timeout, curve=curve, context=context, other_nodes=other_nodes
        )
        self.bot: str | None = None
        """The bot the last ``hello`` named."""
        self.mailbox_acked = 0
        """The mailbox floor the last ``hello`` or ``ack`` reported."""
        self._hello: dict[str, Any] | None = None  # said again on the next node after a failover
        self._key_prefix = random_token("py")
        self._keys_made = 0

    def _resume(self) -> None:
        if self._hello is not None:
            self._call_here("hello", **self._hello)

    def _own_idempotency_key(self, given: str | None) -> str | None:
        # A write retried on another node may have been committed by the one
        # that went silent: the key makes the retry a duplicate, not a copy.
        if given is not None or not self.can_fail_over:
            return given
        self._keys_made += 1
        return f"{self._key_prefix}-{self._keys_made}"

    def __enter__(self) -> Client:
        return self

    # -- the ops

    def hello(
        self, bot: str, *, pushes: bool = True, fan_out: bool = False, credit: int | None = None
    ) -> HelloReply:
        """Names this connection's bot. With ``pushes`` the daemon pushes the
        bot's direct messages here: a share of them, with the bot's other
        connections (replicas) taking the rest, each message held by one
        connection until it is acknowledged; the first connection starts with
        every unsettled one. ``fan_out`` asks for a copy of every direct
        message instead (a mirror, a logger); ``credit`` bounds how many this
        connection holds unacknowledged. Without ``pushes``, the connection
        acts as the bot without taking them (tools)."""
        fields: dict[str, Any] = {
            "bot": bot,
            "pushes": None if pushes else False,
            "fan_out": True if fan_out else None,
            "credit": credit,
        }
        reply = self.call("hello", **fields)
        self._hello = fields
        self.bot = bot
        self.mailbox_acked = int(reply.get("mailbox_acked", 0))
        return HelloReply(
            str(reply["bot"]),
            int(reply["protocol"]),
            self.mailbox_acked,
            int(reply["last_seq"]),
            str(reply.get("connection", "")),
        )

    def bye(self) -> None:
        """Stops being the bot: what this connection holds unacknowledged goes
        to the bot's other connections at once (a clean shutdown of a replica)."""
        self.call("bye")
        self._hello = None
        self.bot = None

    def ping(self) -> int:
        """Round-trips a ``ping``; returns the daemon's clock (µs)."""
        return int(self.call("ping")["ts"])

    def stats(self) -> Reply:
        """The daemon's counters (``stats``)."""
        reply = self.call("stats")
        return {k: v for k, v in reply.items() if k not in ("ok", "id")}

    def publish(
        self,
        channel: str,
        body: Any,
        *,
        type: str = "text",
        idempotency_key: str | None = None,
        reply_to: int | None = None,
    ) -> Published:
        """Appends a message to a channel (created if missing). With an
        ``idempotency_key`` a retry appends nothing and returns the original's
        numbers with ``duplicate`` set. With ``other_nodes`` and no key given,
        the client makes one, so a publish retried on another node is stored
        once."""
        reply = self.call(
            "publish",
            channel=channel,
            body=body,
            type=type,
            idempotency_key=self._own_idempotency_key(idempotency_key),
            reply_to=reply_to,
        )
        return Published(int(reply["seq"]), int(reply["channel_seq"]), int(reply["ts"]), bool(reply["duplicate"]))

    def send(
        self,
        to: str,
        body: Any,
        *,
        type: str = "text",
        idempotency_key: str | None = None,
        reply_to: int | None = None,
        ttl_ms: int | None = None,
    ) -> Sent:
        """Appends a direct message to a bot's mailbox (idempotency as for
        :meth:`publish`, a key of the client's own included)."""
        reply = self.call(
            "send",
            to=to,
            body=body,
            type=type,
            idempotency_key=self._own_idempotency_key(idempotency_key),
            reply_to=reply_to,
            ttl_ms=ttl_ms,
        )
        return Sent(int(reply["seq"]), int(reply["mailbox_seq"]), int(reply["ts"]), bool(reply["duplicate"]))

    def reply(
        self, message: Message, body: Any, *, type: str = "text", idempotency_key: str | None = None
    ) -> Published | Sent:
        """Answers ``message`` (``reply_to`` = its seq): on its channel for a
        channel message, to its sender for a direct message."""
        if message.channel is not None:
            return self.publish(message.channel, body, type=type, idempotency_key=idempotency_key, reply_to=message.seq)
        return self.send(message.sender, body, type=type, idempotency_key=idempotency_key, reply_to=message.seq)

    def history(
        self,
        channel: str | None = None,
        *,
        peer: str | None = None,
        inbox: bool = False,
        bot: str | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        order: str | None = None,
    ) -> HistoryPage:
        """One page of stored messages: a channel's, the conversation with
        ``peer``, or the ``inbox``. See :meth:`history_pages` to read on."""
        reply = self.call(
            "history",
            channel=channel,
            peer=peer,
            inbox=True if inbox else None,
            bot=bot,
            after=after,
            before=before,
            limit=limit,
            order=order,
        )
        return HistoryPage([Message.from_wire(m) for m in reply["messages"]], bool(reply["more"]))

    def history_pages(
        self,
        channel: str | None = None,
        *,
        peer: str | None = None,
        inbox: bool = False,
        bot: str | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        order: str | None = None,
    ) -> Iterator[HistoryPage]:
        """Every page, each requested with the cursor set from the last
        message of the one before (``after`` ascending, ``before``
        descending), until ``more`` is false."""
        while True:
            page = self.history(
                channel, peer=peer, inbox=inbox, bot=bot, after=after, before=before, limit=limit, order=order
            )
            yield page
            if not page.more or not page.messages:
                return
            if order == "desc":
                before = page.messages[-1].seq
            else:
                after = page.messages[-1].seq

    def iter_history(self, channel: str | None = None, **options: Any) -> Iterator[Message]:
        """Every message :meth:`history_pages` returns, one at a time."""
        for page in self.history_pages(channel, **options):
            yield from page.messages

    def ack(self, upto: int | None = None, seqs: list[int] | None = None, *, channel: str | None = None) -> int:
        """Acknowledges direct messages (or, with ``channel``, the messages of
        this bot's durable subscription to it): everything up to ``upto``
        and/or each of ``seqs``. Returns the floor: every message at or below
        it is settled."""
        reply = self.call("ack", upto=upto, seqs=seqs or None, channel=channel)
        acked = int(reply["acked"])
        if channel is None:
            self.mailbox_acked = max(self.mailbox_acked, acked)
        return acked

    def send_and_wait(
        self,
        to: str,
        body: Any,
        *,
        timeout: float | None = None,
        type: str = "text",
        idempotency_key: str | None = None,
    ) -> Message:
        """Request/response between bots: sends ``body`` to ``to`` and waits
        for the direct message that answers it (``reply_to`` = the request's
        seq), which it acknowledges and returns. Other direct messages that
        arrive meanwhile stay queued for the mailbox consumer.

        Needs :meth:`hello` with pushes on this client (the answer is pushed).

        Raises:
            RequestTimeout: no answer within ``timeout`` (default: the client's).
        """
        if self.bot is None:
            raise BotbusError("send_and_wait needs hello(bot) first: the answer is pushed to the bot")
        sent = self.send(to, body, type=type, idempotency_key=idempotency_key)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            push = self.take_push(MAILBOX, lambda p: bool(p["message"].get("reply_to") == sent.seq))
            if push is not None:
                answer = Message.from_wire(push["message"])
                self.ack(seqs=[answer.seq])
                return answer
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"no answer from {to} to message seq {sent.seq} within {limit:g} s")
            self._receive(left)

    # -- consumers

    def subscribe(
        self, channel: str, *, after: int | None = None, receive_hwm: int = 0, receive_buffer: int | None = None
    ) -> Subscription:
        """Follows a channel on the feed: the history after ``after`` (none
        given: from now), a :class:`~botbus.CaughtUp` marker, then live
        messages, in seq order, gaps repaired from history.
        See :class:`~botbus.Subscription`."""
        return Subscription(self, channel, after=after, receive_hwm=receive_hwm, receive_buffer=receive_buffer)

    def mailbox(self) -> Mailbox:
        """The consumer of this bot's direct messages (after :meth:`hello`)."""
        return Mailbox(self)

    def push_subscription(
        self,
        channel: str,
        *,
        durable: bool = False,
        credit: int | None = None,
        from_seq: int | None = None,
        from_time: int | None = None,
        last: int | None = None,
    ) -> PushSubscription:
        """A subscription the daemon delivers over this connection (history,
        its ``caught_up`` marker, then live), durable or not.
        See :class:`~botbus.PushSubscription`."""
        return PushSubscription(
            self, channel, durable=durable, credit=credit, from_seq=from_seq, from_time=from_time, last=last
        )

    def pull_subscription(
        self, channel: str, *, from_seq: int | None = None, from_time: int | None = None, last: int | None = None
    ) -> PullSubscription:
        """A durable subscription read with ``fetch``.
        See :class:`~botbus.PullSubscription`."""
        return PullSubscription(self, channel, from_seq=from_seq, from_time=from_time, last=last)
