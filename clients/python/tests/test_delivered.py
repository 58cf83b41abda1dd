"""Subscriptions delivered over the command connection: durable push with
credit, durable pull with fetch, their acknowledgements and redeliveries,
and a plain (non-durable) push, against the real botbusd."""

from __future__ import annotations

import threading
import time

from botbus import CaughtUp, Delivery
from support import publish_many

ACK_TIMEOUT_MS = 300


def test_a_durable_push_subscription_keeps_to_its_credit_and_resumes_from_its_floor(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    stored = [p.seq for p in publish_many(alice, "jobs", range(5))]

    jobs = bob.push_subscription("jobs", durable=True, credit=2, from_seq=1)
    window = [jobs.get(10), jobs.get(10)]
    marker = jobs.get(10)  # the history is past the credit: the marker comes after the first 2
    assert jobs.get(0.5) is None  # nothing more until an acknowledgement makes room
    window[0].ack()
    third = jobs.get(10)

    assert not jobs.resumed
    assert [d.seq for d in window] == stored[:2]
    assert marker == CaughtUp("jobs", stored[-1])
    assert isinstance(third, Delivery) and third.seq == stored[2]
    jobs.ack(window[1], third)
    assert alice.call("consumers", channel="jobs")["consumers"][0]["acked"] == stored[2]

    # bob reconnects: the subscription resumes from its floor, the 4th message.
    # The daemon hands what the old connection held to the next consumer once
    # it has seen that connection close; wait for that, or the new one could
    # be served first and get them after its caught_up marker.
    bob.close()
    deadline = time.monotonic() + 10
    while alice.call("consumers", channel="jobs")["consumers"][0]["replica_count"] != 0:
        assert time.monotonic() < deadline, "the daemon never saw bob's connection close"
        time.sleep(0.01)
    again = connect(daemon, "bob").push_subscription("jobs", durable=True, credit=10)
    live = alice.publish("jobs", 5)
    items = [again.get(10) for _ in range(4)]
    assert again.resumed
    assert items[2] == CaughtUp("jobs", stored[-1])
    assert [i.seq for i in items if isinstance(i, Delivery)] == [stored[3], stored[4], live.seq]


def test_an_unacknowledged_pushed_message_comes_again_after_the_ack_timeout(start_daemon, connect):
    daemon = start_daemon("--ack-timeout-ms", str(ACK_TIMEOUT_MS))
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    jobs = bob.push_subscription("jobs", durable=True)
    assert isinstance(jobs.get(10), CaughtUp)
    sent = alice.publish("jobs", "work")

    first = jobs.get(10)
    second = jobs.get(10)
    floor = jobs.ack(second)

    assert (first.seq, first.deliveries, first.redelivered) == (sent.seq, 1, False)
    assert (second.seq, second.deliveries, second.redelivered) == (sent.seq, 2, True)
    assert floor == sent.seq
    assert jobs.get(3 * ACK_TIMEOUT_MS / 1000) is None  # acknowledged: never again


def test_a_plain_push_subscription_delivers_the_last_messages_then_live(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    stored = publish_many(alice, "news", ["a", "b", "c"])

    news = bob.push_subscription("news", last=2)
    items = [news.get(10) for _ in range(3)]
    live = alice.publish("news", "d")
    fresh = news.get(10)
    news.unsubscribe()

    assert [i.message.body for i in items[:2]] == ["b", "c"]
    assert items[2] == CaughtUp("news", stored[-1].seq)
    assert fresh.seq == live.seq and not news.durable
    assert alice.call("consumers", channel="news")["consumers"] == []


def test_a_pull_subscription_fetches_in_pages_and_acknowledges(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    stored = [p.seq for p in publish_many(alice, "tasks", range(3))]
    tasks = bob.pull_subscription("tasks", from_seq=1)

    page = tasks.fetch(max=2)
    rest = tasks.fetch(max=2)
    tasks.ack(*page.deliveries)
    rest.deliveries[0].ack()

    assert [d.seq for d in page.deliveries] == stored[:2] and not page.caught_up
    assert [d.seq for d in rest.deliveries] == stored[2:] and rest.caught_up
    assert rest.position == stored[-1]
    lag = alice.call("consumers", bot="bob", channel="tasks")["consumers"][0]
    assert (lag["acked"], lag["lag"], lag["mode"]) == (stored[-1], 0, "pull")


def test_a_waiting_fetch_is_answered_when_a_message_comes(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    tasks = bob.pull_subscription("tasks")
    published = []
    # The publish may reach the daemon before or after the fetch starts to
    # wait; either way the fetch returns it.
    publisher = threading.Thread(target=lambda: published.append(alice.publish("tasks", "late work")))

    publisher.start()
    fetched = tasks.fetch(max=10, wait=20)
    publisher.join()

    assert [d.seq for d in fetched.deliveries] == [published[0].seq]


def test_a_fetched_message_not_acknowledged_comes_again(start_daemon, connect):
    daemon = start_daemon("--ack-timeout-ms", str(ACK_TIMEOUT_MS))
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    tasks = bob.pull_subscription("tasks")
    sent = alice.publish("tasks", "work")

    first = tasks.fetch()
    again = tasks.fetch(wait=10)  # waits for the redelivery
    again.deliveries[0].ack()

    assert [(d.seq, d.deliveries, d.redelivered) for d in first.deliveries] == [(sent.seq, 1, False)]
    assert [(d.seq, d.deliveries, d.redelivered) for d in again.deliveries] == [(sent.seq, 2, True)]
    assert tasks.fetch(wait=3 * ACK_TIMEOUT_MS / 1000).deliveries == []
