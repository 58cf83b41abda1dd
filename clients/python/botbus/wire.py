"""msgpack encoding of requests and decoding of replies, pushes and feed events."""

from __future__ import annotations

import secrets
from typing import Any, cast

import msgpack  # type: ignore[import]  # msgpack ships no type hints


def pack(value: Any) -> bytes:
    """One msgpack frame; ``bytes`` travel as msgpack bin, ``str`` as str."""
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def unpack(frame: bytes) -> Any:
    """Decodes one frame.

    Bodies are kept byte for byte by the daemon, so a body may be a map with
    integer keys (allowed here) or a string that is not UTF-8 (its bad bytes
    come back as surrogate escapes instead of failing the whole frame).

    Raises ValueError for a frame that is not one msgpack value.
    """
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
    except msgpack.UnpackException as e:  # the kinds of truncation that are not ValueErrors
        raise ValueError(str(e)) from e


def random_token(prefix: str = "py") -> str:
    """A name-safe token, unique enough for feed.sync markers."""
    return f"{prefix}-{secrets.token_hex(8)}"


def channel_topic(channel: str) -> str:
    """The feed topic of a channel's messages."""
    return f"ch/{channel}/"


def run_topic(run_id: str) -> str:
    """The feed topic of a workflow run's events."""
    return f"run/{run_id}/"


def sync_topic(token: str) -> str:
    """The feed topic a ``feed.sync`` marker is published on."""
    return f"sync/{token}/"
