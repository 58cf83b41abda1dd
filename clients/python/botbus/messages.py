"""What the daemon hands a bot: messages, deliveries, markers and results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """A stored message: a channel message or a direct message.

    ``sender`` is the wire's ``from`` key (a Python keyword). ``conversation``
    and ``hop`` are filled in for messages that answer nothing (the wire
    leaves them out: ``conversation`` = ``seq``, ``hop`` = 0).
    """

    seq: int
    ts: int
    sender: str
    type: str
    body: Any
    channel: str | None = None
    channel_seq: int | None = None
    to: str | None = None
    mailbox_seq: int | None = None
    reply_to: int | None = None
    conversation: int = 0
    hop: int = 0
    expires_at: int | None = None
    replay_of: int | None = None
    wire: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Message:
        """Reads a message map (docs/PROTOCOL.md, "A message map")."""
        seq = int(m["seq"])
        return cls(
            seq=seq,
            ts=int(m.get("ts", 0)),
            sender=str(m.get("from", "")),
            type=str(m.get("type", "text")),
            body=m.get("body"),
            channel=m.get("channel"),
            channel_seq=m.get("channel_seq"),
            to=m.get("to"),
            mailbox_seq=m.get("mailbox_seq"),
            reply_to=m.get("reply_to"),
            conversation=int(m.get("conversation", seq)),
            hop=int(m.get("hop", 0)),
            expires_at=m.get("expires_at"),
            replay_of=m.get("replay_of"),
            wire=m,
        )


@dataclass(frozen=True)
class Delivery:
    """A message delivered for acknowledgement: pushed (mailbox, delivered
    subscription) or fetched (pull subscription).

    ``deliveries`` counts this delivery too; ``redelivered`` says it was
    delivered before and not acknowledged (or the bot started over).
    """

    message: Message
    deliveries: int
    redelivered: bool
    _ack: Callable[[int], object] | None = field(default=None, repr=False, compare=False)

    @property
    def seq(self) -> int:
        """The message's seq (what ``ack`` takes)."""
        return self.message.seq

    def ack(self) -> None:
        """Acknowledges this message where it came from (mailbox or durable
        subscription). A message of a non-durable subscription needs no
        acknowledgement; this does nothing for it."""
        if self._ack is not None:
            self._ack(self.message.seq)


@dataclass(frozen=True)
class CaughtUp:
    """The end of a subscription's history: messages up to ``seq`` were the
    history, later ones are live."""

    channel: str
    seq: int


@dataclass(frozen=True)
class HelloReply:
    """What ``hello`` answers."""

    bot: str
    protocol: int
    mailbox_acked: int
    last_seq: int
    connection: str = ""  # how ``mailbox`` and ``consumers`` name this connection


@dataclass(frozen=True)
class Published:
    """A ``publish`` reply; ``duplicate`` when an idempotency key matched and
    the original's numbers are returned."""

    seq: int
    channel_seq: int
    ts: int
    duplicate: bool


@dataclass(frozen=True)
class Sent:
    """A ``send`` reply; ``duplicate`` as for :class:`Published`."""

    seq: int
    mailbox_seq: int
    ts: int
    duplicate: bool


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``history``; ``more`` when messages are left after it."""

    messages: list[Message]
    more: bool


@dataclass(frozen=True)
class Fetched:
    """A ``fetch`` reply: the messages, the newest seq the subscription has
    read, and whether nothing newer was there."""

    deliveries: list[Delivery]
    position: int
    caught_up: bool
