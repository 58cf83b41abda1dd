"""The well-behaved client and the process wrapper of the misbehaving one.

Operation: `pinger_main` runs in its own process with its own zmq.Context:
one `ping` in flight, a new one every `interval_s` (closed loop, so a stall
shows as one long ping, not a queue of them), until told to stop; a ping still
unanswered `grace_s` after the stop is counted as unanswered with the time it
waited. `hostile_main` runs one scenario's misbehaving function in another
process and hands back its result dict (or the exception it raised).
Concurrency: each function runs alone in a spawned process; results go back
through multiprocessing queues.
"""

import time
import traceback

import zmq

from wire import Client


def pinger_main(endpoint, interval_s, grace_s, max_pings, ready, stop, results):
    ctx = zmq.Context()
    client = Client(ctx, endpoint)
    client.call("ping", timeout_s=30)
    ready.set()
    latencies, unanswered_waits = [], []
    next_at = time.monotonic()
    while not stop.is_set() and len(latencies) + len(unanswered_waits) < max_pings:
        wanted = client.send("ping")
        sent_at = time.monotonic()
        stop_seen_at = None
        while True:
            reply = client.receive(0.05)
            now = time.monotonic()
            if reply is not None and reply.get("id") == wanted:
                latencies.append(now - sent_at)
                break
            if stop.is_set():
                stop_seen_at = stop_seen_at or now
                if now - stop_seen_at > grace_s:
                    unanswered_waits.append(now - sent_at)
                    break
        next_at += interval_s
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        else:
            next_at = now  # a stall: carry on from here, do not send a burst to catch up
    results.put({"latencies": latencies, "unanswered_waits": unanswered_waits})
    client.close()
    ctx.term()


def hostile_main(function, endpoint, feed, params, stop, results):
    try:
        results.put(function(endpoint, feed, params, stop))
    except Exception as e:  # handed to the table, not hidden
        results.put({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=3)})
