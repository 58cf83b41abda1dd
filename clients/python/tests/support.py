"""Helpers the tests share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botbus import Client, Published


def publish_many(client: Client, channel: str, bodies: Iterable[Any]) -> list[Published]:
    """Publishes every body pipelined (all sent, then every reply read), so
    the daemon commits them in a few group commits rather than one each."""
    ids = [client.send_request("publish", channel=channel, body=body) for body in bodies]
    replies = [client.wait_reply(i) for i in ids]
    return [Published(r["seq"], r["channel_seq"], r["ts"], r["duplicate"]) for r in replies]

