"""Misbehaviours that make the daemon hold memory for one peer (issue 11, 1-5).

Operation: each scenario is a `setup` run in the harness process before the
measured phase (prefill; the daemon's peak during it is reported apart), a
`hostile` function run in its own process during the phase, and an optional
`after` that reads the daemon's counters once the misbehaving peer is gone.
Every loop stops at its count, at `duration_s`, or when the harness sets
`stop` (the memory cap was hit).
Limitations: "never reads" is a peer with RCVHWM 1 and a 4 KiB kernel receive
buffer: it holds almost nothing itself, so what is queued is queued in the
daemon.
"""

import os
import time

import zmq

from wire import Client, pack, publish_many, raw_check_ping, raw_connect, raw_frame_header, stats

NOT_READING = {"rcvhwm": 1, "rcvbuf": 4096}


def hold(stop, started, duration_s):
    stop.wait(max(0.0, started + duration_s - time.monotonic()))


def send_until(sock, frame, count, deadline, stop):
    """Sends `frame` up to `count` times without blocking the stop; returns how many went."""
    sent = 0
    while sent < count and time.monotonic() < deadline and not stop.is_set():
        try:
            sock.send(frame, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            stop.wait(0.005)
    return sent


# 1. pipelines requests and never reads the replies

def setup_unread(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="filler")
    seconds = publish_many(client, "small", p["unread_history_limit"], os.urandom(p["unread_body"]))
    client.close()
    ctx.term()
    return {"prefill": f"{p['unread_history_limit']} x {p['unread_body']} B in {seconds:.1f} s"}


def hostile_unread(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    client = Client(ctx, endpoint, bot="noreader", **NOT_READING)
    frame = pack({"op": "history", "channel": "small", "limit": p["unread_history_limit"]})
    sent = send_until(client.sock, frame, p["unread_requests"], started + p["send_s"], stop)
    sent_s = time.monotonic() - started
    hold(stop, started, p["duration_s"])
    client.close()
    ctx.term()
    return {"sent": sent, "sent_s": sent_s}


def after_unread(daemon, setup, result):
    s = stats(daemon.command)
    return {"dropped_replies": s.get("dropped_replies")}


def describe_unread(p, setup, result, after):
    reply_kb = p["unread_history_limit"] * (p["unread_body"] + 80) / 1000
    return (f"{result.get('sent', '?')} pipelined `history` (~{reply_kb:.0f} kB replies) in "
            f"{result.get('sent_s', 0):.1f} s, none read; dropped_replies {after.get('dropped_replies')}")


# 2. subscribe from seq 1 with a large credit on a big channel, never reads

def setup_replay(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="filler")
    count = p["replay_mb"] * 1000 * 1000 // p["replay_body"]
    seconds = publish_many(client, "big", count, os.urandom(p["replay_body"]), window=200)
    client.close()
    ctx.term()
    return {"count": count, "prefill": f"{count} x {p['replay_body'] // 1000} kB in {seconds:.1f} s"}


def hostile_replay(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    client = Client(ctx, endpoint, bot="greedy", **NOT_READING)
    client.send("subscribe", channel="big", durable=True, from_seq=1, credit=p["replay_credit"])
    hold(stop, started, p["duration_s"])
    client.close()
    ctx.term()
    return {}


def describe_replay(p, setup, result, after):
    return (f"durable `subscribe` from_seq 1, credit {p['replay_credit']}, on a {p['replay_mb']} MB channel "
            f"({setup.get('prefill')}); never reads; held {p['duration_s']} s")


# 3. pipelined 900 kB publishes

def hostile_bigpub(endpoint, feed, p, stop):
    started = time.monotonic()
    deadline = started + p["send_s"]
    ctx = zmq.Context()
    client = Client(ctx, endpoint, bot="bigpub", sndhwm=8)
    frame = pack({"op": "publish", "channel": "bulk", "body": os.urandom(p["bigpub_body"])})
    sent = ok = 0
    errors = {}
    poller = zmq.Poller()
    poller.register(client.sock, zmq.POLLIN | zmq.POLLOUT)
    while ok + sum(errors.values()) < p["bigpub_count"] and time.monotonic() < deadline and not stop.is_set():
        events = dict(poller.poll(50)).get(client.sock, 0)
        if events & zmq.POLLOUT and sent < p["bigpub_count"]:
            try:
                client.sock.send(frame, zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                pass
        if events & zmq.POLLIN:
            while True:
                reply = client.receive(0)
                if reply is None:
                    break
                if reply.get("ok"):
                    ok += 1
                else:
                    errors[reply.get("error")] = errors.get(reply.get("error"), 0) + 1
    elapsed = time.monotonic() - started
    client.close()
    ctx.term()
    return {"sent": sent, "ok": ok, "errors": errors, "elapsed": elapsed}


def describe_bigpub(p, setup, result, after):
    return (f"{result.get('sent', '?')} publishes of {p['bigpub_body'] // 1000} kB sent as fast as the socket "
            f"takes them, replies read; {result.get('ok', '?')} ok, errors {result.get('errors') or 0}, "
            f"{result.get('elapsed', 0):.1f} s")


# 4. feed subscribers that never read while messages flow

def hostile_feed(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    subs = []
    for _ in range(p["feed_subs"]):
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, NOT_READING["rcvhwm"])
        sub.setsockopt(zmq.RCVBUF, NOT_READING["rcvbuf"])
        sub.setsockopt(zmq.SUBSCRIBE, b"ch/")
        sub.setsockopt(zmq.SUBSCRIBE, b"sync/hostile/")
        sub.connect(feed)
        subs.append(sub)
    client = Client(ctx, endpoint, bot="flow", sndhwm=1000)
    synced = set()
    while len(synced) < len(subs) and time.monotonic() < started + 20:  # feed.sync: every SUB is live
        client.call("feed.sync", token="hostile")
        time.sleep(0.1)
        for i, sub in enumerate(subs):
            while sub.poll(0):
                sub.recv_multipart()
                synced.add(i)
    frame = pack({"op": "publish", "channel": "flow", "body": os.urandom(p["feed_body"])})
    sent = ok = 0
    deadline = started + p["send_s"]
    while ok < p["feed_count"] and time.monotonic() < deadline and not stop.is_set():
        while sent < p["feed_count"] and sent - ok < 256:
            client.sock.send(frame)
            sent += 1
        if client.receive(1.0) is not None:
            ok += 1
    sent_s = time.monotonic() - started
    hold(stop, started, p["duration_s"])
    for sub in subs:
        sub.close(0)
    client.close()
    ctx.term()
    return {"synced": len(synced), "published": ok, "sent_s": sent_s}


def describe_feed(p, setup, result, after):
    mb = result.get("published", 0) * p["feed_body"] / 1e6
    return (f"{result.get('synced', '?')}/{p['feed_subs']} SUB sockets on `ch/` (synced, then never read); "
            f"{result.get('published', '?')} x {p['feed_body'] // 1000} kB published ({mb:.0f} MB) in "
            f"{result.get('sent_s', 0):.1f} s")


# 5. many peers each holding a half-sent large frame

def hostile_halfframe(endpoint, feed, p, stop):
    started = time.monotonic()
    handshake_ok = raw_check_ping(endpoint)
    declared = p["half_declared"]
    part = bytes(p["half_sent"])
    socks, failed = [], 0
    for _ in range(p["half_peers"]):
        if stop.is_set() or time.monotonic() > started + p["send_s"]:
            break
        try:
            sock = raw_connect(endpoint)
            sock.sendall(raw_frame_header(declared) + part)
            socks.append(sock)
        except OSError:
            failed += 1
    sent_s = time.monotonic() - started
    hold(stop, started, p["duration_s"])
    for sock in socks:
        sock.close()
    return {"handshake_ok": handshake_ok, "peers": len(socks), "failed": failed, "sent_s": sent_s}


def describe_halfframe(p, setup, result, after):
    return (f"{result.get('peers', '?')} raw ZMTP peers (handshake checked: {result.get('handshake_ok')}), each "
            f"a frame declared {p['half_declared'] / 1e6:.1f} MB with {p['half_sent'] / 1e6:.3f} MB sent, "
            f"held; {result.get('failed', 0)} failed to connect/send")
