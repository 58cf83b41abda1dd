"""Request/reply: ids, timeouts, typed errors, hello, idempotent publish and
send, and history paging, against the real botbusd."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

import botbus
from botbus import Client, RequestTimeout
from botbus.wire import pack, unpack
from support import publish_many


def test_hello_names_the_bot_and_reports_the_log(daemon, connect):
    alice = connect(daemon)
    before = alice.hello("alice")
    assert (before.bot, before.protocol, before.mailbox_acked, before.last_seq) == ("alice", 1, 0, 0)

    published = alice.publish("lobby", "hi")

    assert alice.history("lobby").messages[0].sender == "alice"
    assert connect(daemon).hello("bob").last_seq == published.seq


def test_pipelined_replies_are_matched_by_id_in_any_order(daemon, connect):
    alice = connect(daemon, "alice")
    ids = [alice.send_request("publish", channel="lobby", body=n) for n in range(20)]

    # Waited for newest first: each wait must pick its own reply out of
    # those that arrived before it.
    seqs = {i: alice.wait_reply(i)["seq"] for i in reversed(ids)}

    assert [seqs[i] for i in ids] == sorted(seqs.values())
    assert [m.body for m in alice.iter_history("lobby")] == list(range(20))


def test_a_waiting_fetch_is_overtaken_by_later_requests(daemon, connect):
    bob = connect(daemon, "bob")
    alice = connect(daemon, "alice")
    bob.pull_subscription("jobs")
    fetch_id = bob.send_request("fetch", channel="jobs", wait_ms=20_000)

    assert bob.ping() > 0  # answered while the fetch still waits
    published = alice.publish("jobs", "work")
    fetched = bob.wait_reply(fetch_id, timeout=10)

    assert [item["message"]["seq"] for item in fetched["messages"]] == [published.seq]


def test_a_request_without_a_reply_times_out_and_its_late_reply_is_dropped():
    # A ROUTER that answers only when told to stands in for a daemon that
    # does not answer in time.
    context = zmq.Context.instance()
    silent = context.socket(zmq.ROUTER)
    silent.linger = 0
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    client = Client(f"tcp://127.0.0.1:{port}", timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(RequestTimeout, match=r"no reply to ping \(id 1\)"):
            client.ping()
        assert 0.3 <= time.monotonic() - started < 5
        peer, late = silent.recv_multipart()
        second = client.send_request("ping")
        assert unpack(silent.recv_multipart()[1])["id"] == second

        silent.send_multipart([peer, pack({"ok": True, "id": unpack(late)["id"], "ts": 1})])
        silent.send_multipart([peer, pack({"ok": True, "id": second, "ts": 2})])

        assert client.wait_reply(second)["ts"] == 2
    finally:
        client.close()
        silent.close()


ERROR_CASES = [
    ("history", {"channel": "nowhere"}, botbus.NotFound),
    ("publish", {"channel": "lobby", "body": "anonymous"}, botbus.NotIdentified),
    ("history", {"channel": "no/slash"}, botbus.InvalidName),
    ("channel.list", {"limit": 0}, botbus.InvalidField),
    ("no.such.op", {}, botbus.UnknownOp),
    ("send", {"body": "to nobody"}, botbus.MissingField),
]


def test_error_replies_raise_typed_exceptions_with_the_code(daemon, connect):
    client = connect(daemon)
    for op, fields, error in ERROR_CASES:
        with pytest.raises(error) as raised:
            client.call(op, **fields)
        assert isinstance(raised.value, botbus.ReplyError)
        assert raised.value.code == error.code, op
        assert str(raised.value).startswith(error.code + ": ")
        assert raised.value.message


def test_a_retried_publish_with_its_idempotency_key_appends_once(daemon, connect):
    alice = connect(daemon, "alice")

    first = alice.publish("orders", {"n": 1}, idempotency_key="order-1")
    retry = alice.publish("orders", {"n": 1}, idempotency_key="order-1")

    assert not first.duplicate and retry.duplicate
    assert (retry.seq, retry.channel_seq, retry.ts) == (first.seq, first.channel_seq, first.ts)
    assert [m.seq for m in alice.iter_history("orders")] == [first.seq]
    with pytest.raises(botbus.Conflict):
        alice.publish("elsewhere", {"n": 1}, idempotency_key="order-1")


def test_a_retried_send_with_its_idempotency_key_appends_once(daemon, connect):
    alice = connect(daemon, "alice")

    first = alice.send("bob", "ping?", idempotency_key="ask-1")
    retry = alice.send("bob", "ping?", idempotency_key="ask-1")

    assert not first.duplicate and retry.duplicate
    assert (retry.seq, retry.mailbox_seq) == (first.seq, first.mailbox_seq)
    bob = connect(daemon, "bob", pushes=False)
    assert [m.seq for m in bob.iter_history(inbox=True)] == [first.seq]
    with pytest.raises(botbus.Conflict):
        alice.send("carol", "ping?", idempotency_key="ask-1")


def test_history_is_read_page_by_page_both_ways(daemon, connect):
    alice = connect(daemon, "alice")
    seqs = [p.seq for p in publish_many(alice, "log", range(25))]

    forward = list(alice.history_pages("log", limit=10))
    backward = list(alice.history_pages("log", limit=10, order="desc"))

    assert [len(p.messages) for p in forward] == [10, 10, 5]
    assert [p.more for p in forward] == [True, True, False]
    assert [m.seq for p in forward for m in p.messages] == seqs
    assert [m.seq for p in backward for m in p.messages] == seqs[::-1]
    assert [m.body for m in alice.iter_history("log", after=seqs[19], limit=2)] == [20, 21, 22, 23, 24]


def test_history_reads_a_conversation_between_two_bots(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    question = alice.send("bob", {"q": "lunch?"}, type="question")
    answer = bob.send("alice", "yes", reply_to=question.seq)

    conversation = list(alice.iter_history(peer="bob"))

    assert [(m.sender, m.to, m.type) for m in conversation] == [("alice", "bob", "question"), ("bob", "alice", "text")]
    assert conversation[1].reply_to == question.seq
    assert (conversation[1].conversation, conversation[1].hop) == (question.seq, 1)
    assert (conversation[0].conversation, conversation[0].hop) == (question.seq, 0)
    assert answer.mailbox_seq == 1


def test_clients_on_threads_of_their_own_do_not_mix_replies(daemon, connect):
    clients = [connect(daemon, f"bot-{n}") for n in range(3)]
    errors: list[BaseException] = []

    def publish_own(client: Client) -> None:
        try:
            for n in range(30):
                assert client.publish(f"own-{client.bot}", n).channel_seq == n + 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=publish_own, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
