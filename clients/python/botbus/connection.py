"""The command connection to botbusd: requests matched to replies by id, and
the pushes that arrive on the same socket kept for whoever consumes them.

A :class:`Connection` owns one ZeroMQ DEALER socket, so it belongs to one
thread at a time (use one per thread; they may share a ``zmq.Context``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from .curve import CurveKeys
from .errors import AuthenticationRefused, RequestTimeout, error_from_reply
from .wire import pack, unpack

DEFAULT_COMMAND_ENDPOINT = "tcp://127.0.0.1:7440"
DEFAULT_FEED_ENDPOINT = "tcp://127.0.0.1:7441"

MAILBOX = ""
"""The push queue of direct messages (a channel name is never empty)."""

Reply = dict[str, Any]
Push = dict[str, Any]


class Connection:
    """A command connection to botbusd: requests and replies, and pushes.

    Args:
        command_endpoint: the daemon's command (ROUTER) endpoint.
        feed_endpoint: the daemon's feed (XPUB) endpoint, kept for the feed
            sockets of subscriptions and the workflow executor.
        timeout: seconds to wait for each reply.
        curve: this bot's keys, for a daemon run with ``--auth curve``.
        context: the ZeroMQ context (default: the process's shared one).
        other_nodes: further nodes of the same cluster, as (command endpoint,
            feed endpoint) pairs (docs/SCALING.md): a request the node in use
            leaves unanswered for ``timeout`` is sent to the next one, after
            saying ``hello`` there again (see :meth:`call`).
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
        self.nodes: list[tuple[str, str]] = [(command_endpoint, feed_endpoint), *other_nodes]
        """Every node, the first one first: (command endpoint, feed endpoint)."""
        self.node_generation = 0
        """How many times this connection moved to another node."""
        self._node = 0
        self.command_endpoint = command_endpoint
        self.feed_endpoint = feed_endpoint
        self.timeout = timeout
        self.curve = curve
        self.context: zmq.Context = context or zmq.Context.instance()  # type: ignore[type-arg]
        self._handshake_trouble: str | None = None  # why CURVE handshakes fail, until one succeeds
        self._open_socket()

        self._next_id = 1
        self._pending: dict[int, str] = {}  # request id -> op, in send order
        self._long_polls: set[int] = set()  # fetches with wait_ms: answered out of order
        self._replies: dict[int, Reply] = {}
        self._pushes: dict[str, deque[Push]] = {MAILBOX: deque()}
        self._closed = False

    # -- lifetime

    def _open_socket(self) -> None:
        self._socket = self.context.socket(zmq.DEALER)
        self._socket.linger = 0
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._monitor: zmq.Socket | None = None  # type: ignore[type-arg]
        if self.curve is not None:
            self.curve.apply(self._socket)
            # A refused handshake is reported only to a monitor; watch it
            # from before connect so the first refusal is seen.
            self._monitor = self._socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_AUTH
                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                | zmq.EVENT_HANDSHAKE_SUCCEEDED
            )
            self._poller.register(self._monitor, zmq.POLLIN)
        self._socket.connect(self.command_endpoint)

    def _close_socket(self) -> None:
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
        self._socket.close(linger=0)

    def close(self) -> None:
        """Closes the connection; the daemon then ends its session."""
        if self._closed:
            return
        self._closed = True
        self._close_socket()

    @property
    def can_fail_over(self) -> bool:
        """Whether other nodes were given."""
        return len(self.nodes) > 1

    def fail_over(self) -> None:
        """Moves to the next node that answers: a new socket there, and
        :meth:`_resume` (the client says ``hello`` again). Requests still
        waiting on the old node are given up (their replies will not come).

        Raises:
            RequestTimeout: no other node answered within the timeout.
        """
        tried = [self.command_endpoint]
        for _ in range(len(self.nodes) - 1):
            self._node = (self._node + 1) % len(self.nodes)
            self.command_endpoint, self.feed_endpoint = self.nodes[self._node]
            self._close_socket()
            self._open_socket()
            self._pending.clear()
            self._long_polls.clear()
            self.node_generation += 1
            tried.append(self.command_endpoint)
            try:
                self._resume()
                return
            except RequestTimeout:
                continue  # this one is gone too: the next
        raise RequestTimeout(f"no node answered within {self.timeout:g} s ({', '.join(tried)})")

    def _resume(self) -> None:
        """Runs on the new node after :meth:`fail_over` moved there, before
        the request is sent again (a client says ``hello`` again here)."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request/reply

    def send_request(self, op: str, **fields: Any) -> int:
        """Sends one request without waiting; returns its id for
        :meth:`wait_reply`. Fields whose value is None are left out (nil
        means absent to the daemon anyway)."""
        request_id = self._next_id
        self._next_id += 1
        request = {"op": op, "id": request_id, **{k: v for k, v in fields.items() if v is not None}}
        self._pending[request_id] = op
        if op == "fetch" and fields.get("wait_ms"):
            self._long_polls.add(request_id)
        self._socket.send(pack(request))
        return request_id

    def wait_reply(self, request_id: int, timeout: float | None = None) -> Reply:
        """The reply to the request sent with ``request_id``. Replies to other
        requests that arrive first are kept for their own wait, pushes for
        their consumers.

        Raises:
            ReplyError: (a subclass named for the code) on an error reply.
            RequestTimeout: nothing within ``timeout`` (default: the client's).
            AuthenticationRefused: the daemon refused this CURVE key.
        """
        op = self._pending.get(request_id)
        if op is None and request_id not in self._replies:
            raise ValueError(f"no request with id {request_id} is waiting for its reply")
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            while request_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    why = f" ({self._handshake_trouble})" if self._handshake_trouble else ""
                    raise RequestTimeout(
                        f"no reply to {op} (id {request_id}) from {self.command_endpoint} within {limit:g} s{why}"
                    )
                self._receive(left)
        except RequestTimeout:
            self._forget(request_id)  # a late reply is dropped, not kept forever
            raise
        reply = self._replies.pop(request_id)
        if reply.get("ok") is not True:
            raise error_from_reply(reply)
        return reply

    def call(self, op: str, *, timeout: float | None = None, **fields: Any) -> Reply:
        """Sends a request and waits for its reply (see :meth:`wait_reply`).
        Any op of docs/PROTOCOL.md: ``client.call("channel.list", limit=10)``.

        With ``other_nodes``, a request left unanswered is sent again to the
        next node (:meth:`fail_over`). A write retried that way may have been
        committed by the node that went silent: :meth:`Client.publish` and
        :meth:`Client.send` carry an idempotency key for that; other writes
        are idempotent or answer the retry with the state error of a change
        already made. Only :meth:`call` moves: :meth:`wait_reply` after
        :meth:`send_request`, and pushes, wait on the node in use (a bot that
        only waits for pushes calls :meth:`ping` now and then)."""
        for _ in range(len(self.nodes) - 1):
            try:
                return self.wait_reply(self.send_request(op, **fields), timeout)
            except RequestTimeout:
                self.fail_over()
        return self.wait_reply(self.send_request(op, **fields), timeout)

    def _call_here(self, op: str, **fields: Any) -> Reply:
        """As :meth:`call`, on the node in use only."""
        return self.wait_reply(self.send_request(op, **fields))

    # -- pushes, for the consumers

    def watch_channel(self, channel: str) -> None:
        """Keeps pushes of ``channel``'s delivered subscription for
        :meth:`next_push` (pushes for channels nobody watches are dropped)."""
        self._pushes.setdefault(channel, deque())

    def unwatch_channel(self, channel: str) -> None:
        """Stops keeping ``channel``'s pushes and drops those queued."""
        self._pushes.pop(channel, None)

    def next_push(self, queue: str, timeout: float | None) -> Push | None:
        """The oldest push in ``queue`` (:data:`MAILBOX` or a watched channel),
        waiting up to ``timeout`` seconds (None: for ever); None if none came."""
        return self.take_push(queue, lambda _: True, timeout)

    def take_push(self, queue: str, wanted: Callable[[Push], bool], timeout: float | None = 0) -> Push | None:
        """The oldest push in ``queue`` that is ``wanted``, leaving the others
        queued in order; waits up to ``timeout`` seconds (None: for ever; 0:
        takes only what has arrived already)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pushes = self._pushes.get(queue)
        if pushes is None:
            raise ValueError(f"no push queue for {queue!r}: watch_channel() first")
        while True:
            for index, push in enumerate(pushes):
                if wanted(push):
                    del pushes[index]
                    return push
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if not self._receive(0):  # past the deadline: only what is there already
                    return None
            else:
                self._receive(left)

    # -- reading the socket

    def _receive(self, timeout: float | None) -> bool:
        """Reads what arrives within ``timeout`` seconds (None: until
        something does): one frame, routed as a reply or a push. Returns
        whether a frame was read."""
        try:
            frame = self._socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
            ready = dict(self._poller.poll(wait_ms))
            if self._monitor is not None and self._monitor in ready:
                self._read_monitor()
            if self._socket not in ready:
                return False
            frame = self._socket.recv(zmq.NOBLOCK)
        self._route(frame)
        return True

    def _read_monitor(self) -> None:
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_trouble = None
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                # The daemon's ZAP handler said no: certain, so fail now.
                raise AuthenticationRefused(
                    f"{self.command_endpoint}: the daemon refused this CURVE key (ZAP status {event['value']}): "
                    "is its public key on the daemon's allowlist?"
                )
            else:
                # The connection broke during the handshake, as it does when
                # the daemon cannot read a client that has the wrong server
                # key, but also when the daemon goes away meanwhile; libzmq
                # retries, so this only explains a timeout.
                self._handshake_trouble = (
                    "CURVE handshakes with it fail: is curve.server_public_key the daemon's public key?"
                )

    def _route(self, frame: bytes) -> None:
        try:
            value = unpack(frame)
        except ValueError:
            return  # not msgpack: nothing anyone waits for
        if not isinstance(value, dict):
            return
        if "push" in value:
            self._queue_push(value)
        elif "ok" in value:
            self._match_reply(value)

    def _match_reply(self, reply: Reply) -> None:
        request_id = reply.get("id")
        if request_id is None:
            # The daemon could not read the request's id: the reply answers
            # the oldest request still waiting, leaving out waiting fetches.
            request_id = next((i for i in self._pending if i not in self._long_polls), None)
        if request_id in self._pending:
            self._forget(request_id)
            self._replies[request_id] = reply
        # Otherwise its request timed out and was given up: drop it.

    def _queue_push(self, push: Push) -> None:
        if push.get("push") == "caught_up":
            queue = push.get("channel")
        else:
            message = push.get("message")
            if not isinstance(message, dict) or not isinstance(message.get("seq"), int):
                return
            queue = message.get("channel", MAILBOX)
        if isinstance(queue, str) and queue in self._pushes:
            self._pushes[queue].append(push)

    def _forget(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        self._long_polls.discard(request_id)
