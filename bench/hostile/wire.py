"""The daemon process, a blocking command client and raw ZMTP for the hostile harness.

Operation: `Daemon` starts a real botbusd on 127.0.0.1 with ephemeral ports
(read back from its ready line), a fresh data dir, and reads its memory from
/proc. `Client` is a DEALER that speaks docs/PROTOCOL.md (one msgpack map per
frame); `Pipeline` keeps many requests of one kind in flight. `raw_*` build
ZMTP 3.0 bytes by hand for peers that must stop half way through a frame,
which no ZeroMQ socket can be made to do.
Concurrency: none; each process and thread makes its own zmq.Context and
sockets.
Limitations: Linux only (/proc, clear_refs).
"""

import os
import select
import signal
import socket
import subprocess
import time

import msgpack
import zmq

MiB = 1024 * 1024


def pack(obj, bin_type=True):
    # use_bin_type=False packs bytes as msgpack str: the way to put invalid
    # UTF-8 on the wire.
    return msgpack.packb(obj, use_bin_type=bin_type)


def unpack(raw):
    return msgpack.unpackb(raw, raw=False, strict_map_key=False, unicode_errors="surrogateescape")


class Daemon:
    def __init__(self, botbusd, workdir, durability, extra_args=()):
        self.data_dir = os.path.join(workdir, "data")
        self.stderr_path = os.path.join(workdir, "botbusd.stderr")
        args = [botbusd, "--data-dir", self.data_dir, "--command-endpoint", "tcp://127.0.0.1:*",
                "--feed-endpoint", "tcp://127.0.0.1:*", "--log-level", "warn", "--durability", durability,
                *extra_args]
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        line = b""
        deadline = time.monotonic() + 20
        while b"\n" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(self.proc.stdout.fileno(), 512)
            if not chunk:
                break
            line += chunk
        text = line.decode(errors="replace")
        if not text.startswith("botbusd ready ") or " feed=" not in text:
            self.kill()
            raise RuntimeError("botbusd did not become ready: " + self.stderr_tail())
        self.command = text.split("command=")[1].split(" ")[0].strip()
        self.feed = text.split(" feed=")[1].split("\n")[0].strip()

    def alive(self):
        return self.proc.poll() is None

    def memory_kib(self):
        """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
        except (OSError, KeyError, ValueError):
            return None

    def reset_peak(self):
        """Resets VmHWM to the current RSS (Linux clear_refs 5); False if not allowed."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def stop(self, deadline_s=20):
        """SIGTERM; returns (exit status or None if it hung, seconds it took)."""
        if not self.alive():
            return self.proc.returncode, 0.0
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, time.monotonic() - start
        return code, time.monotonic() - start

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(20)

    def stderr_tail(self, lines=5):
        self._stderr.flush()
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stderr_lines(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []


class Client:
    """A DEALER on the command socket. rcvhwm/rcvbuf small: a client that stops reading."""

    def __init__(self, ctx, endpoint, bot=None, rcvhwm=None, rcvbuf=None, sndhwm=None):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if rcvbuf is not None:
            self.sock.setsockopt(zmq.RCVBUF, rcvbuf)
        if sndhwm is not None:
            self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        self.sock.connect(endpoint)
        self.next_id = 0
        if bot:
            self.call("hello", bot=bot, pushes=False)

    def send(self, op, **fields):
        self.next_id += 1
        self.sock.send(pack({"op": op, "id": self.next_id, **fields}))
        return self.next_id

    def receive(self, timeout_s):
        """The next reply (pushes skipped), or None at the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self.sock.poll(int(left * 1000)):  # 0: look without waiting
                return None
            reply = unpack(self.sock.recv())
            if "push" not in reply:
                return reply

    def call(self, op, timeout_s=60, **fields):
        wanted = self.send(op, **fields)
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self.receive(deadline - time.monotonic())
            if reply is None:
                raise TimeoutError(f"{op}: no reply within {timeout_s} s")
            if reply.get("id") == wanted:
                if not reply.get("ok"):
                    raise RuntimeError(f"{op}: {reply.get('error')}: {reply.get('message')}")
                return reply

    def close(self):
        self.sock.close(0)


def pipeline(client, frames, window, timeout_s=300):
    """Sends each pre-packed request frame, `window` in flight; returns (ok, errors by code, seconds)."""
    start = time.monotonic()
    deadline = start + timeout_s
    sent = answered = ok = 0
    errors = {}
    total = len(frames)
    while answered < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pipeline: {answered}/{total} answered in {timeout_s} s")
        while sent < total and sent - answered < window:
            client.sock.send(frames[sent])
            sent += 1
        reply = client.receive(min(10.0, deadline - time.monotonic()))
        if reply is None:
            continue
        answered += 1
        if reply.get("ok"):
            ok += 1
        else:
            errors[reply.get("error")] = errors.get(reply.get("error"), 0) + 1
    return ok, errors, time.monotonic() - start


def publish_many(client, channel, count, body, window=500, timeout_s=600):
    """Stores `count` messages with the same body; raises unless every one is acknowledged."""
    frame = pack({"op": "publish", "channel": channel, "body": body})
    done = 0
    start = time.monotonic()
    while done < count:  # chunks keep the frame list small
        chunk = min(20000, count - done)
        ok, errors, _ = pipeline(client, [frame] * chunk, window, timeout_s)
        if errors:
            raise RuntimeError(f"prefill of {channel}: {errors}")
        done += ok
    return time.monotonic() - start


def stats(endpoint, timeout_s=60):
    ctx = zmq.Context()
    try:
        client = Client(ctx, endpoint)
        reply = client.call("stats", timeout_s=timeout_s)
        client.close()
        return reply
    finally:
        ctx.term()


def ping_once(endpoint, timeout_s):
    """Seconds a fresh connection waited for a pong, or None."""
    ctx = zmq.Context()
    try:
        client = Client(ctx, endpoint)
        start = time.monotonic()
        try:
            client.call("ping", timeout_s=timeout_s)
            return time.monotonic() - start
        except (TimeoutError, RuntimeError):
            return None
        finally:
            client.close()
    finally:
        ctx.term()


# --- ZMTP 3.0 by hand (rfc.zeromq.org/spec/23) ---

def raw_greeting():
    return b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def raw_ready_dealer():
    prop_name, prop_value = b"Socket-Type", b"DEALER"
    body = b"\x05READY" + bytes([len(prop_name)]) + prop_name + len(prop_value).to_bytes(4, "big") + prop_value
    return bytes([0x04, len(body)]) + body


def raw_frame_header(size):
    """Header of a final message frame of `size` bytes (long form)."""
    return bytes([0x02]) + size.to_bytes(8, "big")


def raw_connect(endpoint, timeout_s=10):
    """A raw ZMTP peer past the greeting, its READY sent. The greeting goes
    alone and the daemon's is read before READY: libzmq closes a connection
    whose peer sends its greeting and what follows it in one segment."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    sock.sendall(raw_greeting())
    greeting = b""
    while len(greeting) < 64:
        chunk = sock.recv(64 - len(greeting))
        if not chunk:
            raise ConnectionError("closed during the greeting")
        greeting += chunk
    sock.sendall(raw_ready_dealer())
    return sock


def raw_read_frame(sock, buffered):
    """Reads one ZMTP frame (flags, body) from sock; `buffered` holds bytes read so far."""
    def need(n):
        nonlocal buffered
        while len(buffered) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buffered += chunk
    need(2)
    flags = buffered[0]
    if flags & 0x02:
        need(9)
        size, at = int.from_bytes(buffered[1:9], "big"), 9
    else:
        size, at = buffered[1], 2
    need(at + size)
    body = buffered[at:at + size]
    return flags, body, buffered[at + size:]


def raw_check_ping(endpoint):
    """Proves the hand-made handshake: a raw peer sends a whole ping and reads the pong."""
    sock = raw_connect(endpoint)
    try:
        frame = pack({"op": "ping", "id": 1})
        sock.sendall(bytes([0x00, len(frame)]) + frame)
        buffered = b""
        while True:
            flags, body, buffered = raw_read_frame(sock, buffered)
            if flags & 0x04:
                continue  # READY
            reply = unpack(body)
            return bool(reply.get("ok") and reply.get("pong"))
    finally:
        sock.close()
