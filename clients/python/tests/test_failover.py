"""A client given several nodes of one cluster (botbusd on one PostgreSQL
log, docs/SCALING.md) moves on when its node dies: its requests go to the
next node after a ``hello`` there, a publish retried there is stored once,
and a subscription follows it with no gap and no duplicate.

Needs a PostgreSQL server: ``BOTBUS_TEST_POSTGRES`` (scripts/test.sh starts
one and sets it, with ``BOTBUS_REQUIRE_POSTGRES=1`` so the test fails rather
than skips without it)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest
from conftest import StartDaemon

from botbus import Client, Message, RequestTimeout, Subscription


@pytest.fixture
def postgres_store() -> str:
    """A fresh schema on the test server, as a --store URI."""
    uri = os.environ.get("BOTBUS_TEST_POSTGRES")
    if not uri:
        if os.environ.get("BOTBUS_REQUIRE_POSTGRES") == "1":
            pytest.fail("BOTBUS_REQUIRE_POSTGRES is set but BOTBUS_TEST_POSTGRES is not")
        pytest.skip("no PostgreSQL server: BOTBUS_TEST_POSTGRES is not set (scripts/test.sh sets it)")
    schema = "py_" + secrets.token_hex(6)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", uri, "-c", f"CREATE SCHEMA {schema}"], check=True)
    return uri + ("&" if "?" in uri else "?") + f"options=-csearch_path%3D{schema}"


def take(subscription: Subscription, count: int) -> list[Message]:
    """The next ``count`` messages (markers skipped), or what came in 30 s."""
    got: list[Message] = []
    deadline = time.monotonic() + 30
    while len(got) < count and (left := deadline - time.monotonic()) > 0:
        item = subscription.next(left)
        if isinstance(item, Message):
            got.append(item)
    return got


def test_a_client_of_several_nodes_moves_on_when_its_node_dies_and_its_subscription_follows(
    start_daemon: StartDaemon, postgres_store: str
) -> None:
    nodes = [start_daemon("--store", postgres_store) for _ in range(2)]
    others = [(nodes[1].command_endpoint, nodes[1].feed_endpoint)]
    clients = [
        Client(nodes[0].command_endpoint, nodes[0].feed_endpoint, timeout=2.0, other_nodes=others) for _ in range(2)
    ]
    publisher, reader = clients
    try:
        publisher.hello("publisher")
        reader.hello("reader")
        subscription = reader.subscribe("news", after=0)
        before = [publisher.publish("news", f"m{i}").seq for i in range(30)]
        got = take(subscription, 30)

        nodes[0].kill()
        # The first publish waits out the timeout, moves to node 1, says
        # hello there and is sent again (with the client's own key).
        after = [publisher.publish("news", f"n{i}").seq for i in range(30)]
        assert publisher.node_generation == 1
        assert publisher.command_endpoint == nodes[1].command_endpoint

        # The reader's feed went quiet: it pings, moves, and reads on.
        got += take(subscription, 30)
        assert [m.seq for m in got] == before + after
        assert reader.node_generation == 1
        # Each stored once: what node 1 has is exactly what was acknowledged.
        assert [m.seq for m in reader.iter_history("news")] == before + after
        subscription.close()
    finally:
        for client in clients:
            client.close()


def test_every_node_silent_is_a_timeout_naming_them_all(start_daemon: StartDaemon, postgres_store: str) -> None:
    nodes = [start_daemon("--store", postgres_store) for _ in range(2)]
    client = Client(
        nodes[0].command_endpoint,
        nodes[0].feed_endpoint,
        timeout=1.0,
        other_nodes=[(nodes[1].command_endpoint, nodes[1].feed_endpoint)],
    )
    try:
        client.hello("lonely")
        for node in nodes:
            node.kill()
        with pytest.raises(RequestTimeout) as raised:
            client.ping()
        for node in nodes:
            assert node.command_endpoint in str(raised.value)
    finally:
        client.close()
