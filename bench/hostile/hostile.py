#!/usr/bin/python3
"""botbusd under hostile clients: peak RSS and another client's ping latency (issue 11).

Operation: for each scenario, a fresh botbusd (the path given) on a fresh temp
data dir, 127.0.0.1 and ephemeral ports; prefill if the scenario needs it;
then, measured together, a well-behaved client pinging every 10 ms (its own
process) and the misbehaving client(s) (another process), while the harness
samples the daemon's VmRSS every 50 ms. Memory growth past --cap-mib stops
the misbehaviour ("capped"); growth past twice that kills the daemon. After
the phase: is the daemon alive, does a fresh connection get a pong, does it
exit 0 on SIGTERM. Prints a markdown table (and writes it with --out).
Concurrency: scenarios run one after another; the ping and misbehaving
clients are spawned processes so neither waits on the other's interpreter.
Limitations: clients share the machine's CPUs with the daemon; run it on an
otherwise idle machine for figures to compare across runs.
"""

import argparse
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenarios_memory as mem  # noqa: E402
import scenarios_stall as stall  # noqa: E402
from probe import hostile_main, pinger_main  # noqa: E402
from wire import Daemon, ping_once  # noqa: E402

SIZES = {
    "unread_requests": 20000, "unread_history_limit": 100, "unread_body": 1000,
    "replay_mb": 300, "replay_body": 16000, "replay_credit": 100000,
    "bigpub_body": 900_000, "bigpub_count": 2000,
    "feed_subs": 20, "feed_body": 16000, "feed_count": 100000,
    "half_peers": 200, "half_declared": 2_000_000, "half_sent": 1_999_000,
    "history_body": 54_000, "history_requests": 30, "history_in_flight": 4,
    "fetch_waiting": 40000, "fetch_connections": 4, "fetch_publish_interval_s": 0.02,
    "stats_events": 500_000, "channels": 20000, "calls": 2000,
    "churn_connections": 11000, "churn_parallel": 16,
    "utf8_trials": 20, "utf8_publishes": 300,
}
# --quick: every size small, to check the harness itself in a minute or two.
QUICK = {
    "unread_requests": 500, "replay_mb": 5, "bigpub_count": 20, "feed_count": 500, "feed_subs": 4,
    "half_peers": 5, "history_requests": 4, "fetch_waiting": 400, "stats_events": 5000, "channels": 200,
    "calls": 20, "churn_connections": 200, "utf8_trials": 2,
}


@dataclass
class Scenario:
    key: str
    title: str
    hostile: object
    describe: object
    setup: object = None
    after: object = None
    send_s: float = 15
    duration_s: float = 20


SCENARIOS = [
    Scenario("1", "pipelines requests, never reads replies", mem.hostile_unread, mem.describe_unread,
             mem.setup_unread, mem.after_unread),
    Scenario("2", "`subscribe` from seq 1, large credit, big channel, never reads", mem.hostile_replay,
             mem.describe_replay, mem.setup_replay),
    Scenario("3", "pipelined 900 kB publishes", mem.hostile_bigpub, mem.describe_bigpub, send_s=20),
    Scenario("4", "feed subscribers that never read while messages flow", mem.hostile_feed,
             mem.describe_feed),
    Scenario("5", "peers each holding a half-sent large frame", mem.hostile_halfframe,
             mem.describe_halfframe),
    Scenario("6", "`history` of a large channel in one request", stall.hostile_history,
             stall.describe_history, stall.setup_history),
    Scenario("7", "many waiting `fetch`es on one channel while messages flow", stall.hostile_fetch,
             stall.describe_fetch, stall.setup_fetch, send_s=20),
    Scenario("8a", "`stats` on a large log", stall.hostile_stats, stall.describe_stats, stall.setup_stats,
             send_s=10, duration_s=15),
    Scenario("8b", "`channel.list` with many channels", stall.hostile_channels, stall.describe_channels,
             stall.setup_channels, send_s=10, duration_s=15),
    Scenario("9", "connection churn: connections that send one request each and go", stall.hostile_churn,
             stall.describe_churn, stall.setup_churn, stall.after_churn, send_s=30, duration_s=30),
    Scenario("10", "one invalid-UTF-8 `workflow.put` amid another client's publishes", stall.hostile_badutf8,
             stall.describe_badutf8, send_s=25, duration_s=25),
]


@dataclass
class Row:
    key: str
    title: str
    load: str = ""
    rss_start: float = 0
    prefill_peak: float = None
    phase_peak: float = None
    capped: str = ""
    pings: dict = field(default_factory=dict)
    survived: str = ""
    notes: list = field(default_factory=list)


def mib(kib):
    return kib / 1024


def run_scenario(sc, opts, sizes):
    workdir = tempfile.mkdtemp(prefix=f"hostile-{sc.key}-", dir=opts.tmpdir)
    row = Row(sc.key, sc.title)
    params = dict(sizes, send_s=sc.send_s, duration_s=sc.duration_s)
    daemon = Daemon(opts.botbusd, workdir, opts.durability)
    spawn = multiprocessing.get_context("spawn")
    try:
        time.sleep(0.3)  # as botbus-bench's idle figure: let start-up allocations settle
        rss_start = daemon.memory_kib()[0]
        row.rss_start = mib(rss_start)
        setup = {}
        if sc.setup:
            setup = sc.setup(daemon, params)
            row.prefill_peak = mib(daemon.memory_kib()[1])
            row.notes.append(f"RSS after prefill {mib(daemon.memory_kib()[0]):.0f} MiB")
        if not daemon.reset_peak():
            row.notes.append("VmHWM could not be reset: the peak includes the prefill")
        ready, stop_pings, ping_results = spawn.Event(), spawn.Event(), spawn.Queue()
        pinger = spawn.Process(target=pinger_main, args=(daemon.command, 0.01, 10.0, 100000, ready, stop_pings,
                                                         ping_results))
        pinger.start()
        if not ready.wait(30):
            raise RuntimeError("the ping client got no first pong")
        stop_hostile, hostile_results = spawn.Event(), spawn.Queue()
        hostile = spawn.Process(target=hostile_main, args=(sc.hostile, daemon.command, daemon.feed, params,
                                                           stop_hostile, hostile_results))
        started = time.monotonic()
        hostile.start()
        sampled_peak, stop_sent_at = rss_start, None
        cap_kib, kill_kib = opts.cap_mib * 1024, 2 * opts.cap_mib * 1024
        while hostile.is_alive():
            now = time.monotonic()
            memory = daemon.memory_kib()
            if memory is None or not daemon.alive():
                break
            sampled_peak = max(sampled_peak, memory[0])
            growth = memory[0] - rss_start
            if growth > cap_kib and not row.capped:
                row.capped = f"capped at {opts.cap_mib} MiB growth after {now - started:.1f} s"
                stop_hostile.set()
                stop_sent_at = now
            if growth > kill_kib:
                row.capped += f"; daemon killed at {mib(memory[0]):.0f} MiB (still growing)"
                daemon.kill()
                break
            if now - started > sc.duration_s + 5 and stop_sent_at is None:
                stop_hostile.set()
                stop_sent_at = now
            if stop_sent_at is not None and now - stop_sent_at > 15:
                hostile.terminate()
                row.notes.append("misbehaving client terminated (did not stop in 15 s)")
                break
            time.sleep(0.05)
        try:
            result = hostile_results.get(timeout=10)
        except Exception:
            result = {"error": "no result (terminated)"}
        hostile.join(10)
        if hostile.is_alive():
            hostile.kill()
        stop_pings.set()
        try:
            row.pings = ping_results.get(timeout=30)
        except Exception:
            row.pings = {}
            row.notes.append("the ping client returned nothing")
        pinger.join(10)
        if pinger.is_alive():
            pinger.kill()
        memory = daemon.memory_kib()
        row.phase_peak = mib(memory[1]) if memory else mib(sampled_peak)
        if memory is None:
            row.notes.append(f"peak from 50 ms samples: {mib(sampled_peak):.0f} MiB")
        if "error" in result:
            row.notes.append(f"misbehaving client: {result['error']}")
        after = {}
        if daemon.alive():
            pong = ping_once(daemon.command, 10)
            if sc.after and pong is not None:
                try:
                    after = sc.after(daemon, setup, result)
                except Exception as e:
                    row.notes.append(f"after: {e}")
            code, took = daemon.stop()
            row.survived = ("yes" if pong is not None else "alive but no pong in 10 s") + (
                f"; SIGTERM exit {code} in {took:.1f} s" if code is not None else "; hung on SIGTERM (killed)")
        else:
            code = daemon.proc.returncode
            row.survived = f"**NO** (exit {code}{' = signal ' + str(-code) if code and code < 0 else ''})"
            row.notes.append("stderr: " + daemon.stderr_tail())
        row.load = sc.describe(params, setup, result, after)
        warnings = [line for line in daemon.stderr_lines() if "[warn" in line or "[error" in line]
        if warnings:
            row.notes.append(f"{len(warnings)} warn/error log lines, last: {warnings[-1][-160:]}")
    finally:
        daemon.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return row


def latency_cells(pings):
    lat = pings.get("latencies", [])
    waits = pings.get("unanswered_waits", [])
    if not lat and not waits:
        return "n/a", "0"
    ordered = sorted(lat)

    def at(fraction):
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")
    worst = max(lat + waits) * 1000
    worst_text = f"≥ {worst:.0f}" if waits and max(waits) >= max(lat, default=0) else f"{worst:.1f}"
    answered = f"{len(lat)}" + (f" (+{len(waits)} unanswered)" if waits else "")
    return f"{at(0.5):.2f} / {at(0.99):.1f} / {worst_text}", answered


def conditions(opts, sizes):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem_total = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    version = subprocess.run([opts.botbusd, "--version"], capture_output=True, text=True).stdout.strip()
    here = os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(["git", "-C", here, "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    fs = subprocess.run(["df", "-T", opts.tmpdir], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; harness tree: {commit}",
        f"- daemon: `{opts.botbusd}` ({version}), `--durability {opts.durability}`, log level warn, every other "
        f"option at its default; a fresh daemon and data dir per scenario, in {opts.tmpdir} ({fs})",
        f"- machine: {cpu}, {os.cpu_count()} CPUs, {int(mem_total) // 1024} MiB RAM, Linux {platform.release()}; "
        f"load average at start {os.getloadavg()[0]:.1f} (clients run on the same CPUs as the daemon"
        f"{', harness niced' if os.nice(0) > 0 else ''})",
        "- ping: a separate process, one `ping` in flight, one every 10 ms, during the misbehaviour only; "
        "latencies are request to reply on 127.0.0.1 (p50 / p99 / max, ms); a ping unanswered 10 s after the "
        "misbehaviour ended counts as unanswered, its wait as the max (≥)",
        "- RSS: \"at start\" is VmRSS 0.3 s after the ready line; \"peak\" is VmHWM over the misbehaviour "
        "(reset with clear_refs after any prefill, whose own peak is given apart); growth = peak − at start; "
        f"the misbehaviour is stopped when growth passes {opts.cap_mib} MiB (\"capped\")",
        "- a client that \"never reads\" has RCVHWM 1 and a 4 KiB SO_RCVBUF: what is queued is queued in the daemon",
        "- sizes: " + ", ".join(f"{k}={v}" for k, v in sizes.items()),
    ]


def table(rows):
    out = ["| # | misbehaviour | RSS at start (MiB) | peak (VmHWM, MiB) | growth (MiB) | ping p50 / p99 / max (ms) "
           "| pings answered | daemon survived | load and notes |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lat, answered = latency_cells(row.pings)
        peak = f"{row.phase_peak:.0f}" if row.phase_peak is not None else "n/a"
        growth = f"{row.phase_peak - row.rss_start:+.0f}" if row.phase_peak is not None else "n/a"
        if row.capped:
            growth += f" **{row.capped}**"
        notes = [row.load] + ([f"prefill peak {row.prefill_peak:.0f} MiB"] if row.prefill_peak else []) + row.notes
        out.append(f"| {row.key} | {row.title} | {row.rss_start:.0f} | {peak} | {growth} | {lat} | {answered} | "
                   f"{row.survived} | {'; '.join(n.replace('|', '/') for n in notes if n)} |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("botbusd", help="path of the botbusd binary to measure")
    parser.add_argument("--only", help="comma-separated scenario numbers (1,2,...,8a,8b,9,10)")
    parser.add_argument("--durability", default="full", choices=["full", "normal"])
    parser.add_argument("--cap-mib", type=int, default=2048, help="stop a misbehaviour at this RSS growth")
    parser.add_argument("--tmpdir", default=os.environ.get("TMPDIR", "/tmp"), help="where data dirs go (a real disk)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness, not the daemon")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a size")
    parser.add_argument("--out", help="also write the markdown here")
    opts = parser.parse_args()
    opts.botbusd = os.path.abspath(opts.botbusd)
    sizes = dict(SIZES, **(QUICK if opts.quick else {}))
    for item in opts.set:
        key, value = item.split("=", 1)
        if key not in SIZES:
            parser.error(f"unknown size {key}")
        sizes[key] = type(SIZES[key])(value)
    wanted = set(opts.only.split(",")) if opts.only else None
    rows = []
    head = conditions(opts, sizes)
    for sc in SCENARIOS:
        if wanted and sc.key not in wanted:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] scenario {sc.key}: {sc.title}", file=sys.stderr, flush=True)
        try:
            rows.append(run_scenario(sc, opts, sizes))
        except Exception as e:
            row = Row(sc.key, sc.title, survived="harness error")
            row.notes.append(f"{type(e).__name__}: {e}")
            rows.append(row)
        print("  " + table(rows[-1:])[-1], file=sys.stderr, flush=True)
    text = "\n".join(["## botbusd under hostile clients", "", *head, "", *table(rows), ""])
    print(text)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
