"""subscribe(): history, the caught_up marker, live messages, and gaps in the
feed repaired from history, against the real botbusd."""

from __future__ import annotations

import threading
import time

from botbus import CaughtUp, Message, Subscription
from support import publish_many


def take(subscription: Subscription, count: int, timeout: float = 10.0) -> list[Message | CaughtUp]:
    items: list[Message | CaughtUp] = []
    for _ in range(count):
        item = subscription.next(timeout)
        assert item is not None, f"only {len(items)} of {count} items came: {items}"
        items.append(item)
    return items


def test_subscribe_catches_up_from_history_marks_it_then_goes_live(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    stored = publish_many(alice, "news", ["a", "b", "c"])

    with bob.subscribe("news", after=0) as news:
        history = take(news, 4)
        live_sent = publish_many(alice, "news", ["d", "e"])
        live = take(news, 2)
        assert news.next(0.2) is None  # nothing else: no duplicates

    assert [m.body for m in history[:3]] == ["a", "b", "c"]
    assert history[3] == CaughtUp("news", stored[-1].seq)
    assert [(m.seq, m.channel_seq, m.sender) for m in live] == [(p.seq, p.channel_seq, "alice") for p in live_sent]
    assert news.gaps == 0


def test_subscribe_without_a_start_delivers_from_now(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    old = alice.publish("news", "old")

    with bob.subscribe("news") as news:
        marker = news.next(10)
        new = alice.publish("news", "new")
        item = news.next(10)

    assert marker == CaughtUp("news", old.seq)
    assert isinstance(item, Message) and item.seq == new.seq and item.body == "new"


def test_subscribe_to_a_channel_not_created_yet(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")

    with bob.subscribe("later", after=0) as later:
        assert later.next(10) == CaughtUp("later", 0)
        first = alice.publish("later", 1)
        item = later.next(10)

    assert item.seq == first.seq and item.channel_seq == 1


def test_subscribe_after_a_seq_starts_past_it(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    stored = publish_many(alice, "news", range(5))

    with bob.subscribe("news", after=stored[2].seq) as news:
        items = take(news, 3)

    assert [m.body for m in items[:2]] == [3, 4]
    assert items[2] == CaughtUp("news", stored[4].seq)


def test_subscribing_while_messages_are_published_loses_and_repeats_nothing(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    done = threading.Event()

    def publish_steadily() -> None:
        for batch in range(30):
            publish_many(alice, "busy", range(batch * 10, batch * 10 + 10))
        done.set()

    publisher = threading.Thread(target=publish_steadily)
    publisher.start()
    try:
        with bob.subscribe("busy", after=0) as busy:
            seqs = []
            while len(seqs) < 300:
                item = busy.next(10)
                assert item is not None, f"stalled after {len(seqs)} messages"
                if isinstance(item, Message):
                    seqs.append(item.seq)
    finally:
        publisher.join()

    assert done.is_set()
    assert seqs == [m.seq for m in alice.iter_history("busy", limit=1000)]


def test_a_gap_in_the_feed_is_repaired_from_history(start_daemon, connect):
    # The daemon holds at most 1 MiB for feed subscribers that stop reading;
    # past that it disconnects them. bob's SUB socket takes one event at a
    # time into a 4 KiB buffer, so while bob reads nothing of a burst he is
    # cut off, his socket reconnects by itself, and the feed skips whatever
    # was published meanwhile: a real gap in channel_seq.
    daemon = start_daemon("--max-feed-bytes", str(1024 * 1024))
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    first = alice.publish("news", "first")  # the channel_seq live messages must follow on from
    news = bob.subscribe("news", after=0, receive_hwm=1, receive_buffer=4096)
    assert [news.next(10), news.next(10)] == [alice.history("news").messages[0], CaughtUp("news", first.seq)]

    # bob reads nothing until the daemon has cut him off. How much that
    # takes depends on the kernel's socket buffers (4 MiB or more on
    # loopback), so publish in bursts of 1 MiB until it has.
    padding = "p" * 16 * 1024
    deadline = time.monotonic() + 60
    while alice.stats()["feed_disconnects"] == 0:
        assert time.monotonic() < deadline, "the daemon never disconnected the stalled subscriber"
        publish_many(alice, "news", (f"{n} {padding}" for n in range(64)))

    # Gaps show when a later message arrives: publish a tail until one
    # reaches bob's reconnected socket and everything before it is in.
    delivered = [first.seq]
    while True:
        assert time.monotonic() < deadline, f"{len(delivered)} delivered, last {delivered[-1]}"
        tail = alice.publish("news", "tail")
        while (item := news.next(1.0)) is not None:
            delivered.append(item.seq)
            if item.seq == tail.seq:
                break
        if delivered[-1] == tail.seq:
            break
    news.close()

    assert delivered == [m.seq for m in alice.iter_history("news", limit=1000)]
    assert news.gaps >= 1 and news.repaired >= 1, (news.gaps, news.repaired)
