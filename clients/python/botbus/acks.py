"""What a consumer has acknowledged, to drop repeats of settled messages.

Delivery is at least once: a message acknowledged while its redelivery was
already on the way comes again. A consumer hands out every delivery not
acknowledged yet (redeliveries included: they are how an unfinished message
is retried) and drops those at or below the floor or acknowledged above it.
"""

from __future__ import annotations


class AckedSeqs:
    """The floor (every seq at or below it settled) and the seqs acknowledged above it."""

    def __init__(self, floor: int = 0) -> None:
        self.floor = floor
        self._above: set[int] = set()

    def settled(self, seq: int) -> bool:
        """Whether ``seq`` was acknowledged (so a delivery of it is a repeat)."""
        return seq <= self.floor or seq in self._above

    def acked(self, seqs: list[int], upto: int | None, floor: int) -> None:
        """Records an acknowledgement and the floor the daemon answered."""
        self._above.update(seqs)
        self.floor = max(self.floor, floor, upto or 0)
        self._above = {seq for seq in self._above if seq > self.floor}
