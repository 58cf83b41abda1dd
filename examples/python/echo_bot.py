#!/usr/bin/env python3
"""echo_bot: a botbus bot on the Python client library (clients/python).

It says hello as its bot, then consumes its mailbox: every direct message it
gets is answered to its sender (``reply_to`` = the message's seq, type
``echo``) with ``{"echo": <the body>}``, then acknowledged. Answering before
acknowledging means a crash in between repeats an answer rather than losing
one (delivery is at least once). Stop it with Ctrl-C, or give
``--max-messages`` to stop after that many answers.

    PYTHONPATH=clients/python python3 examples/python/echo_bot.py
    build/daemon/botbus send echo-bot "ping?"
    build/daemon/botbus history --peer echo-bot
"""

from __future__ import annotations

import argparse
import sys

from botbus import DEFAULT_COMMAND_ENDPOINT, DEFAULT_FEED_ENDPOINT, Client, CurveKeys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Answer every direct message with its echo.")
    parser.add_argument("--command-endpoint", default=DEFAULT_COMMAND_ENDPOINT, help="botbusd's command socket")
    parser.add_argument("--feed-endpoint", default=DEFAULT_FEED_ENDPOINT, help="botbusd's feed socket")
    parser.add_argument("--as", dest="bot", default="echo-bot", help="the bot to run as (default: echo-bot)")
    parser.add_argument("--curve-key", metavar="FILE", help="this bot's CURVE key pair file (botbus keygen)")
    parser.add_argument("--server-key", metavar="KEY", help="the daemon's public key: its .pub file or the key")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after answering this many (0: never)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    args = parser.parse_args(argv)
    if (args.curve_key is None) != (args.server_key is None):
        parser.error("--curve-key and --server-key go together")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    curve = CurveKeys.from_files(args.curve_key, args.server_key) if args.curve_key else None
    with Client(args.command_endpoint, args.feed_endpoint, timeout=args.timeout, curve=curve) as bot:
        bot.hello(args.bot)
        print(f"{args.bot} ready on {args.command_endpoint}", flush=True)
        answered = 0
        for delivery in bot.mailbox():
            message = delivery.message
            bot.reply(message, {"echo": message.body}, type="echo")
            delivery.ack()
            answered += 1
            print(f"answered seq {message.seq} from {message.sender}", flush=True)
            if answered == args.max_messages:
                break
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
