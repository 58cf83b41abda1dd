"""Misbehaviours that stall the loop, leak sessions or spread one failure (issue 11, 6-10).

Operation: as scenarios_memory.py: `setup` in the harness before the phase,
`hostile` in its own process during it, `after` once it is gone. Every loop is
bounded by a count, `duration_s` and `stop`.
"""

import os
import time

import zmq

from wire import Client, pack, pipeline, publish_many, stats


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_calls(client, op, fields, p, stop):
    """Calls `op` one at a time until the count or the time is up: (seconds each, reply bytes)."""
    started = time.monotonic()
    frame = pack({"op": op, **fields})
    times, size = [], 0
    while len(times) < p["calls"] and time.monotonic() < started + p["send_s"] and not stop.is_set():
        sent_at = time.monotonic()
        client.sock.send(frame)
        if not client.sock.poll(int(p["duration_s"] * 1000)):
            break
        raw = client.sock.recv()
        times.append(time.monotonic() - sent_at)
        size = len(raw)
    return times, size


def describe_times(times):
    if not times:
        return "no reply"
    return f"{len(times)} calls, each p50 {percentile(times, 0.5) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"


# 6. history of a large channel in one request

def setup_history(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="filler")
    seconds = publish_many(client, "wide", 1000, os.urandom(p["history_body"]), window=200)
    client.close()
    ctx.term()
    return {"prefill": f"1000 x {p['history_body'] // 1000} kB in {seconds:.1f} s"}


def hostile_history(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    client = Client(ctx, endpoint, bot="reader")
    frame = pack({"op": "history", "channel": "wide", "limit": 1000})
    in_flight, times, size = [], [], 0
    sent = 0
    while time.monotonic() < started + p["send_s"] and not stop.is_set():
        while sent < p["history_requests"] and len(in_flight) < p["history_in_flight"]:
            client.sock.send(frame)
            in_flight.append(time.monotonic())
            sent += 1
        if not in_flight:
            break
        if client.sock.poll(1000):
            size = len(client.sock.recv())
            times.append(time.monotonic() - in_flight.pop(0))
    client.close()
    ctx.term()
    return {"times": times, "reply_bytes": size}


def describe_history(p, setup, result, after):
    return (f"`history` limit 1000 of a channel of {setup.get('prefill')}, {p['history_in_flight']} in flight: "
            f"replies of {result.get('reply_bytes', 0) / 1e6:.1f} MB, {describe_times(result.get('times', []))}")


# 7. many waiting fetches on one channel while messages flow

def setup_fetch(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="puller")
    client.call("subscribe", channel="pulled", durable=True, deliver="pull")
    client.close()
    ctx.term()
    return {}


def hostile_fetch(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    pullers = [Client(ctx, endpoint, bot="puller", sndhwm=100000) for _ in range(p["fetch_connections"])]
    publisher = Client(ctx, endpoint, bot="flow")
    fetch = pack({"op": "fetch", "channel": "pulled", "max": 1, "wait_ms": 60000})
    publish = pack({"op": "publish", "channel": "pulled", "body": "tick"})
    poller = zmq.Poller()
    for client in pullers + [publisher]:
        poller.register(client.sock, zmq.POLLIN)
    fetches = fetched = published = 0
    fetches_done_s = None
    publish_sent_at, publish_times = [], []
    next_publish = started
    deadline = started + p["send_s"]
    while time.monotonic() < deadline and not stop.is_set():
        if fetches < p["fetch_waiting"]:
            for client in pullers:  # in slices, so replies and publishes go on meanwhile
                for _ in range(min(250, p["fetch_waiting"] - fetches)):
                    client.sock.send(fetch)
                    fetches += 1
            if fetches >= p["fetch_waiting"]:
                fetches_done_s = time.monotonic() - started
        now = time.monotonic()
        if now >= next_publish and len(publish_sent_at) < 50:  # at most 50 unanswered publishes
            publisher.sock.send(publish)
            publish_sent_at.append(now)
            published += 1
            next_publish = now + p["fetch_publish_interval_s"]
        for sock, _ in poller.poll(5):
            while sock.poll(0):
                sock.recv()
                if sock is publisher.sock:
                    publish_times.append(time.monotonic() - publish_sent_at.pop(0))
                else:
                    fetched += 1
    for client in pullers + [publisher]:
        client.close()
    ctx.term()
    return {"fetches": fetches, "fetches_done_s": fetches_done_s, "fetch_replies": fetched,
            "published": published, "publish_times": publish_times}


def describe_fetch(p, setup, result, after):
    done = result.get("fetches_done_s")
    sent = f"all sent after {done:.1f} s" if done is not None else "not all sent in time"
    times = result.get("publish_times", [])
    return (f"{result.get('fetches', '?')} `fetch` wait_ms 60000 from {p['fetch_connections']} connections "
            f"({sent}); 1 publish / {p['fetch_publish_interval_s'] * 1000:.0f} ms: {len(times)} acknowledged, "
            f"ack p50 {percentile(times, 0.5) * 1000:.0f} ms, max {max(times, default=0) * 1000:.0f} ms; "
            f"{result.get('fetch_replies', '?')} fetches answered")


# 8a. stats on a large log

def setup_stats(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="filler")
    seconds = publish_many(client, "log", p["stats_events"], "x" * 100, window=1000)
    client.close()
    ctx.term()
    return {"prefill": f"{p['stats_events']} messages of 100 B in {seconds:.1f} s"}


def hostile_stats(endpoint, feed, p, stop):
    ctx = zmq.Context()
    client = Client(ctx, endpoint)
    times, size = timed_calls(client, "stats", {}, p, stop)
    client.close()
    ctx.term()
    return {"times": times, "reply_bytes": size}


def describe_stats(p, setup, result, after):
    return f"`stats` back to back on a log of {setup.get('prefill')}: {describe_times(result.get('times', []))}"


# 8b. channel.list with many channels

def setup_channels(daemon, p):
    ctx = zmq.Context()
    client = Client(ctx, daemon.command, bot="filler")
    frames = [pack({"op": "channel.create", "name": f"c{i:07d}"}) for i in range(p["channels"])]
    ok, errors, seconds = pipeline(client, frames, 1000)
    client.close()
    ctx.term()
    if errors:
        raise RuntimeError(f"channel.create: {errors}")
    return {"prefill": f"{ok} channels in {seconds:.1f} s"}


def hostile_channels(endpoint, feed, p, stop):
    ctx = zmq.Context()
    client = Client(ctx, endpoint)
    times, size = timed_calls(client, "channel.list", {}, p, stop)
    client.close()
    ctx.term()
    return {"times": times, "reply_bytes": size}


def describe_channels(p, setup, result, after):
    return (f"`channel.list` back to back with {setup.get('prefill')}: replies of "
            f"{result.get('reply_bytes', 0) / 1e6:.1f} MB, {describe_times(result.get('times', []))}")


# 9. connection churn

def setup_churn(daemon, p):
    return {"sessions_before": stats(daemon.command).get("sessions")}


def hostile_churn(endpoint, feed, p, stop):
    started = time.monotonic()
    ctx = zmq.Context()
    ping = pack({"op": "ping"})
    done = failed = 0
    while done + failed < p["churn_connections"] and time.monotonic() < started + p["send_s"] \
            and not stop.is_set():
        socks = []
        for _ in range(min(p["churn_parallel"], p["churn_connections"] - done - failed)):
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send(ping)
            socks.append(sock)
        for sock in socks:
            if sock.poll(5000):
                sock.recv()
                done += 1
            else:
                failed += 1
            sock.close(0)
    elapsed = time.monotonic() - started
    ctx.term()
    return {"done": done, "failed": failed, "elapsed": elapsed}


def after_churn(daemon, setup, result):
    return {"sessions_after": stats(daemon.command).get("sessions")}


def describe_churn(p, setup, result, after):
    return (f"{result.get('done', '?')} connections each sent one `ping`, read the pong and closed "
            f"({result.get('failed', 0)} unanswered) in {result.get('elapsed', 0):.1f} s; stats `sessions` "
            f"{setup.get('sessions_before')} before, {after.get('sessions_after')} after")


# 10. one invalid-UTF-8 workflow.put amid other clients' publishes

def hostile_badutf8(endpoint, feed, p, stop):
    ctx = zmq.Context()
    good = Client(ctx, endpoint, bot="good")
    bad = Client(ctx, endpoint, bot="bad")
    publish = pack({"op": "publish", "channel": "mixed", "body": "fine"})
    # bytes packed with use_bin_type=False go out as a msgpack str: invalid UTF-8 in a JSON document.
    put = pack({"op": "workflow.put", "id": "bad", "definition": {"name": "wf", "steps": [{"id": "a"}],
                                                                  "note": b"\xff\xfe not utf-8"}}, bin_type=False)
    half = p["utf8_publishes"] // 2
    trials, good_sent, good_failed, codes, bad_codes = 0, 0, 0, {}, {}
    for _ in range(p["utf8_trials"]):
        if stop.is_set():
            break
        for _ in range(half):
            good.sock.send(publish)
        bad.sock.send(put)
        for _ in range(p["utf8_publishes"] - half):
            good.sock.send(publish)
        good_sent += p["utf8_publishes"]
        for _ in range(p["utf8_publishes"]):
            reply = good.receive(30)
            if reply is None:
                codes["no reply"] = codes.get("no reply", 0) + 1
                good_failed += 1
            elif not reply.get("ok"):
                codes[reply.get("error")] = codes.get(reply.get("error"), 0) + 1
                good_failed += 1
        reply = bad.receive(30)
        code = "no reply" if reply is None else ("ok" if reply.get("ok") else reply.get("error"))
        bad_codes[code] = bad_codes.get(code, 0) + 1
        trials += 1
    good.close()
    bad.close()
    ctx.term()
    return {"trials": trials, "good_sent": good_sent, "good_failed": good_failed, "codes": codes,
            "bad_codes": bad_codes}


def describe_badutf8(p, setup, result, after):
    return (f"{result.get('trials', '?')} trials of {p['utf8_publishes']} pipelined publishes with one "
            f"invalid-UTF-8 `workflow.put` from another client in the middle: "
            f"**{result.get('good_failed', '?')} of {result.get('good_sent', '?')} good publishes failed** "
            f"{result.get('codes') or ''}; the bad put got {result.get('bad_codes')}")
