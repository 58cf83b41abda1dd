"""Exceptions raised by the botbus client.

Every error reply from the daemon becomes a :class:`ReplyError` whose class
names the stable error code (docs/PROTOCOL.md, "Error codes"), so callers can
``except NotFound`` rather than compare strings; ``error.code`` holds the code
itself, and an unknown code still raises a plain :class:`ReplyError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BotbusError(Exception):
    """Base class of every exception this package raises."""


class RequestTimeout(BotbusError, TimeoutError):
    """No reply (or no awaited message) arrived within the timeout.

    A daemon that refuses a connection says nothing (a plaintext client on a
    CURVE daemon, an unknown key); that too shows up as a timeout.
    """


class AuthenticationRefused(RequestTimeout):
    """The daemon refused this connection's CURVE handshake.

    libzmq reports the refusal only to a socket monitor (ZAP status 400 for
    a key that is not on the allowlist), never as a reply; the client
    watches for it so a wrong key fails at once with this error instead of
    waiting out the timeout.
    """


class LeaseLost(BotbusError):
    """A workflow executor no longer holds its run's lease (the run crashed,
    was taken over, or left ``running``)."""


class ReplyError(BotbusError):
    """The daemon answered a request with ``ok: false``.

    Attributes:
        code: the stable error code, e.g. ``"not_found"``.
        message: the daemon's text for people (may change between versions).
        reply: the whole reply map (``retry_after_ms`` rides on it for
            ``rate_limited``).
    """

    code: str = ""

    def __init__(self, code: str, message: str, reply: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply: Mapping[str, Any] = reply or {}


class BadRequest(ReplyError):
    """``bad_request``: the frame could not be read as a request."""


class FrameTooLarge(ReplyError):
    """``frame_too_large``: the request is over the daemon's ``--max-frame``."""


class UnsupportedVersion(ReplyError):
    """``unsupported_version``: ``v`` is present and not 1."""


class UnknownOp(ReplyError):
    """``unknown_op``: no such operation."""


class MissingField(ReplyError):
    """``missing_field``: a required field is absent."""


class InvalidField(ReplyError):
    """``invalid_field``: a field has the wrong type or an out-of-range value."""


class InvalidName(ReplyError):
    """``invalid_name``: a channel, bot, type or token name breaks the naming rule."""


class NotIdentified(ReplyError):
    """``not_identified``: the op needs ``hello`` first."""


class NotFound(ReplyError):
    """``not_found``: the channel, run, subscription... does not exist."""


class Conflict(ReplyError):
    """``conflict``: e.g. an idempotency key reused for another target."""


class StorageError(ReplyError):
    """``storage_error``: nothing of the request was applied; retry."""


class ShuttingDown(ReplyError):
    """``shutting_down``: the daemon is stopping."""


class InternalError(ReplyError):
    """``internal``: a bug in the daemon."""


class InvalidDefinition(ReplyError):
    """``invalid_definition``: a workflow definition breaks a rule."""


class HasRuns(ReplyError):
    """``has_runs``: ``workflow.delete`` of a workflow with runs, without archiving."""


class InvalidTransition(ReplyError):
    """``invalid_transition``: the run or step is not in a state that allows the op."""


class NotLeaseOwner(ReplyError):
    """``not_lease_owner``: another bot holds the run's lease."""


class DepthExceeded(ReplyError):
    """``depth_exceeded``: an answer deeper than the daemon's hop limit."""


class RateLimited(ReplyError):
    """``rate_limited``: over the sender's rate; see :attr:`retry_after_ms`."""

    @property
    def retry_after_ms(self) -> int | None:
        """When a retry can succeed, in milliseconds (from the reply)."""
        value = self.reply.get("retry_after_ms")
        return value if isinstance(value, int) else None


class Forbidden(ReplyError):
    """``forbidden``: the bot may not do this (key or permission)."""


class LimitReached(ReplyError):
    """``limit_reached``: a per-bot or per-connection limit is reached."""


_BY_CODE: dict[str, type[ReplyError]] = {
    "bad_request": BadRequest,
    "frame_too_large": FrameTooLarge,
    "unsupported_version": UnsupportedVersion,
    "unknown_op": UnknownOp,
    "missing_field": MissingField,
    "invalid_field": InvalidField,
    "invalid_name": InvalidName,
    "not_identified": NotIdentified,
    "not_found": NotFound,
    "conflict": Conflict,
    "storage_error": StorageError,
    "shutting_down": ShuttingDown,
    "internal": InternalError,
    "invalid_definition": InvalidDefinition,
    "has_runs": HasRuns,
    "invalid_transition": InvalidTransition,
    "not_lease_owner": NotLeaseOwner,
    "depth_exceeded": DepthExceeded,
    "rate_limited": RateLimited,
    "forbidden": Forbidden,
    "limit_reached": LimitReached,
}
for _code, _cls in _BY_CODE.items():
    _cls.code = _code


def error_from_reply(reply: Mapping[str, Any]) -> ReplyError:
    """The exception for an error reply: the class of its code, or
    :class:`ReplyError` for a code this version does not know."""
    code = reply.get("error")
    code = code if isinstance(code, str) else "unknown"
    message = reply.get("message")
    message = message if isinstance(message, str) else ""
    return _BY_CODE.get(code, ReplyError)(code, message, reply)
