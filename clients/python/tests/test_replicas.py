"""A bot scaled to several replicas: its connections share its direct
messages, a replica that says bye hands what it holds to the others, and
fan_out gives a connection a copy of every message; against the real
botbusd."""

from __future__ import annotations

from botbus import Client


def drain(client: Client, timeout: float = 0.3) -> list[int]:
    """Seqs of the direct messages pushed to this connection until none
    comes within ``timeout``, each acknowledged."""
    inbox = client.mailbox()
    seqs = []
    while (delivery := inbox.get(timeout)) is not None:
        seqs.append(delivery.seq)
        delivery.ack()
    return seqs


def test_replicas_share_the_direct_messages_each_once(daemon, connect):
    alice = connect(daemon, "alice")
    first = connect(daemon)
    second = connect(daemon)
    first_hello = first.hello("worker", credit=5)
    second_hello = second.hello("worker", credit=5)
    assert first_hello.connection and first_hello.connection != second_hello.connection
    sent = [alice.send("worker", {"n": n}).seq for n in range(10)]

    # Five each: every window full, nothing pushed twice.
    replicas = alice.call("mailbox", bot="worker")["replicas"]
    assert sorted((r["connection"], r["in_flight"]) for r in replicas) == sorted(
        [(first_hello.connection, 5), (second_hello.connection, 5)]
    )
    got_first = drain(first)
    got_second = drain(second)
    assert sorted(got_first + got_second) == sent
    assert got_first and got_second


def test_a_replica_that_says_bye_hands_its_messages_over_and_fan_out_sees_everything(daemon, connect):
    alice = connect(daemon, "alice")
    leaving = connect(daemon, "worker")
    mirror = connect(daemon)
    mirror.hello("worker", fan_out=True)
    sent = alice.send("worker", "do it").seq
    held = leaving.mailbox().get(5)
    assert held is not None and held.seq == sent
    copy = mirror.mailbox().get(5)
    assert copy is not None and copy.seq == sent

    staying = connect(daemon, "worker")
    assert staying.mailbox().get(0.3) is None  # the leaving one holds it
    leaving.bye()
    handed = staying.mailbox().get(5)
    assert (handed.seq, handed.deliveries, handed.redelivered) == (sent, 1, True)
    handed.ack()
    assert alice.call("mailbox", bot="worker")["unsettled"] == 0
