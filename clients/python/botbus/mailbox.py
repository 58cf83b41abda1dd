"""Consuming a bot's direct messages, with acknowledgements.

After ``hello`` the daemon pushes the bot's unsettled direct messages to the
connection, oldest first, at most ``--mailbox-window`` unacknowledged at a
time; one not acknowledged within ``--ack-timeout-ms`` is pushed again
(``redelivered``, its ``deliveries`` counted) until ``--max-deliveries``
make it a dead letter (docs/PROTOCOL.md, "Direct-message delivery").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .acks import AckedSeqs
from .connection import MAILBOX
from .errors import BotbusError
from .messages import Delivery, Message

if TYPE_CHECKING:
    from .client import Client


class Mailbox:
    """The consumer of the direct messages pushed to one client's bot.

    Iterate it (blocks for the next message) or call :meth:`get` with a
    timeout; acknowledge each :class:`Delivery` when it is handled
    (``delivery.ack()`` or :meth:`ack`). Create it with
    :meth:`Client.mailbox` after :meth:`Client.hello`.
    """

    def __init__(self, client: Client) -> None:
        if client.bot is None:
            raise BotbusError("a mailbox needs hello(bot) first: direct messages are pushed to the bot")
        self._client = client
        self._acked = AckedSeqs(client.mailbox_acked)

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next direct message not acknowledged yet, waiting up to
        ``timeout`` seconds (None: for ever); None when none came in time."""
        while True:
            push = self._client.next_push(MAILBOX, timeout)
            if push is None:
                return None
            message = Message.from_wire(push["message"])
            if self._acked.settled(message.seq):
                continue  # a repeat of a message handled already
            return Delivery(message, int(push.get("deliveries", 1)), bool(push.get("redelivered")), self._ack_one)

    def __iter__(self) -> Iterator[Delivery]:
        while True:
            delivery = self.get(timeout=None)
            if delivery is not None:
                yield delivery

    def ack(self, *deliveries: Delivery | int) -> int:
        """Acknowledges these messages (deliveries or seqs); they are settled
        and never delivered again. Returns the mailbox's floor."""
        seqs = [d.seq if isinstance(d, Delivery) else int(d) for d in deliveries]
        floor = self._client.ack(seqs=seqs)
        self._acked.acked(seqs, None, floor)
        return floor

    def ack_upto(self, seq: int) -> int:
        """Acknowledges every direct message up to and including ``seq``."""
        floor = self._client.ack(upto=seq)
        self._acked.acked([], seq, floor)
        return floor

    def _ack_one(self, seq: int) -> None:
        self.ack(seq)
