"""The mailbox consumer (pushes, acknowledgements, redelivery) and
send_and_wait between two bots, against the real botbusd."""

from __future__ import annotations

import threading
import time

import pytest

from botbus import Client, RequestTimeout

ACK_TIMEOUT_MS = 300


def test_the_mailbox_yields_direct_messages_and_an_ack_settles_them(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    sent = [alice.send("bob", {"n": n}) for n in range(3)]
    inbox = bob.mailbox()

    first = [inbox.get(10) for _ in sent]
    assert [(d.seq, d.message.body, d.deliveries, d.redelivered) for d in first] == [
        (s.seq, {"n": n}, 1, False) for n, s in enumerate(sent)
    ]
    first[0].ack()
    inbox.ack(first[2])

    # Another replica says hello: what the first holds stays the first's
    # until it leaves, then only the message left unacknowledged comes again.
    again = connect(daemon, "bob").mailbox()
    assert again.get(0.3) is None
    bob.bye()
    redelivered = again.get(10)
    assert (redelivered.seq, redelivered.redelivered) == (sent[1].seq, True)
    assert again.get(0.5) is None
    assert again.ack_upto(sent[2].seq) == sent[2].seq
    assert alice.call("mailbox", bot="bob")["unsettled"] == 0


def test_an_unacknowledged_message_is_pushed_again_after_the_ack_timeout(start_daemon, connect):
    daemon = start_daemon("--ack-timeout-ms", str(ACK_TIMEOUT_MS))
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    sent = alice.send("bob", "do it")
    inbox = bob.mailbox()

    first = inbox.get(10)
    started = time.monotonic()
    second = inbox.get(10)
    waited = time.monotonic() - started
    second.ack()

    assert (first.seq, first.deliveries, first.redelivered) == (sent.seq, 1, False)
    assert (second.seq, second.deliveries, second.redelivered) == (sent.seq, 2, True)
    assert waited >= ACK_TIMEOUT_MS / 1000 * 0.9
    assert inbox.get(3 * ACK_TIMEOUT_MS / 1000) is None  # acknowledged: never again
    assert alice.call("mailbox", bot="bob")["unsettled"] == 0


def answer_questions(client: Client, count: int, errors: list[BaseException]) -> None:
    """bob's side: answers `count` questions with their body doubled."""
    try:
        inbox = client.mailbox()
        for _ in range(count):
            question = inbox.get(10)
            assert question is not None, "no question came"
            client.reply(question.message, {"answer": question.message.body["q"] * 2}, type="answer")
            question.ack()
    except BaseException as e:  # reported by the test's thread
        errors.append(e)


def test_send_and_wait_gets_the_answer_and_leaves_other_messages_queued(daemon, connect):
    alice = connect(daemon, "alice")
    bob = connect(daemon, "bob")
    carol = connect(daemon, "carol")
    aside = carol.send("alice", "unrelated")
    errors: list[BaseException] = []
    responder = threading.Thread(target=answer_questions, args=(bob, 2, errors))
    responder.start()
    try:
        answers = [alice.send_and_wait("bob", {"q": q}, timeout=10) for q in (21, 50)]
    finally:
        responder.join()

    assert errors == []
    assert [(a.body, a.type, a.sender, a.hop) for a in answers] == [
        ({"answer": 42}, "answer", "bob", 1),
        ({"answer": 100}, "answer", "bob", 1),
    ]
    questions = [m for m in alice.iter_history(peer="bob") if m.sender == "alice"]
    assert [a.reply_to for a in answers] == [q.seq for q in questions]
    # The answers were acknowledged; the unrelated message waits for the mailbox.
    queued = alice.mailbox().get(10)
    assert queued.seq == aside.seq
    assert alice.call("mailbox")["unsettled"] == 1


def test_send_and_wait_times_out_when_nobody_answers(daemon, connect):
    alice = connect(daemon, "alice")
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match="no answer from nobody"):
        alice.send_and_wait("nobody", "anyone?", timeout=0.5)
    assert time.monotonic() - started < 5
