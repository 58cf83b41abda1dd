"""examples/python/echo_bot.py, run as a bot author would run it, against
the real botbusd (so the example cannot rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import botbus
from botbusd_process import REPO

ECHO_BOT = REPO / "examples" / "python" / "echo_bot.py"


def start_echo_bot(daemon, *args: str) -> subprocess.Popen:
    # The example imports the package under test, wherever it was found.
    env = dict(os.environ, PYTHONPATH=str(Path(botbus.__file__).resolve().parents[1]))
    return subprocess.Popen(
        [sys.executable, str(ECHO_BOT), "--command-endpoint", daemon.command_endpoint,
         "--feed-endpoint", daemon.feed_endpoint, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def finish(bot: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = bot.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        bot.kill()
        out, err = bot.communicate()
        pytest.fail(f"echo_bot did not stop; stdout:\n{out}\nstderr:\n{err}")
    return bot.returncode, out, err


def test_the_echo_bot_answers_direct_messages_then_stops(daemon, connect):
    bot = start_echo_bot(daemon, "--max-messages", "2")
    try:
        alice = connect(daemon, "alice")
        answers = [alice.send_and_wait("echo-bot", body, timeout=20) for body in ({"n": 1}, "two")]
    finally:
        status, out, err = finish(bot)

    assert status == 0, err
    assert [(a.body, a.type, a.sender) for a in answers] == [
        ({"echo": {"n": 1}}, "echo", "echo-bot"),
        ({"echo": "two"}, "echo", "echo-bot"),
    ]
    assert out.splitlines()[0].startswith("echo-bot ready on ")
    assert alice.call("mailbox", bot="echo-bot")["unsettled"] == 0  # it acknowledged both


def test_the_readme_walkthrough_with_the_cli(daemon, connect, botbus_cli):
    # examples/python/README.md: the CLI (as its default bot, botbus-cli)
    # sends echo-bot a question; the echo comes back to botbus-cli.
    def cli(*args: str) -> str:
        command = [str(botbus_cli), "--command-endpoint", daemon.command_endpoint, *args]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout

    cli_inbox = connect(daemon, "botbus-cli").mailbox()
    bot = start_echo_bot(daemon, "--max-messages", "1")
    try:
        cli("send", "echo-bot", "ping?")
        answer = cli_inbox.get(20)
    finally:
        status, _, err = finish(bot)

    assert status == 0, err
    assert answer is not None and answer.message.body == {"echo": "ping?"}
    conversation = [json.loads(line) for line in cli("--json", "history", "--peer", "echo-bot").splitlines()]
    assert [(m["from"], m["type"]) for m in conversation] == [("botbus-cli", "text"), ("echo-bot", "echo")]
