"""CURVE keys against a real botbusd run with --auth curve: keys written by
``botbus keygen`` and by this package both work, on both sockets, as their
own bot only; a key the daemon does not list is refused."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from botbus import (
    AuthenticationRefused,
    CaughtUp,
    Client,
    CurveKeys,
    Forbidden,
    RequestTimeout,
    make_key_pair,
    read_key_pair,
    read_public_key,
    write_key_pair,
)


def keygen(cli: Path, file: Path) -> None:
    subprocess.run([str(cli), "keygen", str(file)], check=True, capture_output=True, timeout=30)


@pytest.fixture
def curve_daemon(start_daemon, botbus_cli, tmp_path):
    """A daemon with --auth curve listing alice (keys from botbus keygen) and
    bob (keys from write_key_pair); returns it and the keys' directory."""
    keys = tmp_path / "keys"
    keys.mkdir()
    keygen(botbus_cli, keys / "server.key")
    keygen(botbus_cli, keys / "alice.key")
    write_key_pair(keys / "bob.key", make_key_pair())
    allowlist = keys / "allowlist"
    allowlist.write_text(
        "# bots and their keys\n"
        f"alice = {read_key_pair(keys / 'alice.key').public_key}\n"
        f"bob = {read_public_key(keys / 'bob.key.pub')}\n"
    )
    daemon = start_daemon("--auth", "curve", "--server-key", str(keys / "server.key"), "--allowlist", str(allowlist))
    return daemon, keys


def keys_of(keys: Path, bot: str) -> CurveKeys:
    return CurveKeys.from_files(keys / f"{bot}.key", keys / "server.key.pub")


def test_listed_keys_work_on_both_sockets_as_their_own_bot(curve_daemon, connect):
    daemon, keys = curve_daemon
    alice = connect(daemon, "alice", curve=keys_of(keys, "alice"))
    bob = connect(daemon, "bob", curve=keys_of(keys, "bob"))

    with bob.subscribe("secure", after=0) as feed:  # the SUB socket is a CURVE client too
        assert feed.next(10) == CaughtUp("secure", 0)
        published = alice.publish("secure", "signed")
        live = feed.next(10)

    assert (live.seq, live.sender, live.body) == (published.seq, "alice", "signed")
    with pytest.raises(Forbidden, match="belongs to bot bob"):
        bob.hello("alice")
    assert alice.stats()["auth_refusals"] == 0


def test_a_key_not_on_the_allowlist_is_refused_at_once(curve_daemon, connect, tmp_path):
    daemon, keys = curve_daemon
    stranger = make_key_pair()
    server_key = read_public_key(keys / "server.key.pub")
    client = connect(daemon, curve=CurveKeys(stranger.public_key, stranger.secret_key, server_key), timeout=10)

    started = time.monotonic()
    with pytest.raises(AuthenticationRefused, match="refused this CURVE key") as refused:
        client.hello("alice")

    # Seen from the handshake's failure, not the end of the timeout.
    assert time.monotonic() - started < 5
    assert isinstance(refused.value, RequestTimeout)
    alice = connect(daemon, "alice", curve=keys_of(keys, "alice"))
    assert alice.stats()["auth_refusals"] >= 1


def test_a_client_without_keys_gets_no_answer(curve_daemon):
    daemon, _ = curve_daemon
    with Client(daemon.command_endpoint, daemon.feed_endpoint, timeout=1.0) as plaintext:
        with pytest.raises(RequestTimeout, match="no reply to ping"):
            plaintext.ping()


def test_a_wrong_server_key_times_out_naming_the_likely_cause(curve_daemon, connect):
    daemon, keys = curve_daemon
    alice = read_key_pair(keys / "alice.key")
    wrong_server = make_key_pair().public_key
    client = connect(daemon, curve=CurveKeys(alice.public_key, alice.secret_key, wrong_server), timeout=2.0)

    with pytest.raises(RequestTimeout, match="is curve.server_public_key the daemon's public key") as timed_out:
        client.hello("alice")

    assert not isinstance(timed_out.value, AuthenticationRefused)
