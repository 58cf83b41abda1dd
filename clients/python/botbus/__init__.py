"""botbus: the Python client of the botbus message bus daemon (botbusd).

Pure Python on pyzmq and msgpack; the wire protocol is docs/PROTOCOL.md.

    from botbus import Client

    with Client("tcp://127.0.0.1:7440", "tcp://127.0.0.1:7441") as bot:
        bot.hello("my-bot")
        bot.publish("lobby", {"text": "hello"})
        for item in bot.subscribe("lobby", after=0):
            print(item)
"""

from .client import Client
from .connection import DEFAULT_COMMAND_ENDPOINT, DEFAULT_FEED_ENDPOINT, Connection
from .curve import CurveKeyPair, CurveKeys, make_key_pair, read_key_pair, read_public_key, write_key_pair
from .delivered import PullSubscription, PushSubscription
from .errors import (
    AuthenticationRefused,
    BadRequest,
    BotbusError,
    Conflict,
    DepthExceeded,
    Forbidden,
    FrameTooLarge,
    HasRuns,
    InternalError,
    InvalidDefinition,
    InvalidField,
    InvalidName,
    InvalidTransition,
    LeaseLost,
    LimitReached,
    MissingField,
    NotFound,
    NotIdentified,
    NotLeaseOwner,
    RateLimited,
    ReplyError,
    RequestTimeout,
    ShuttingDown,
    StorageError,
    UnknownOp,
    UnsupportedVersion,
)
from .mailbox import Mailbox
from .messages import CaughtUp, Delivery, Fetched, HelloReply, HistoryPage, Message, Published, Sent
from .subscription import Subscription
from .workflow import RunResult, StepContext, StepHandler, WorkflowExecutor, steps_in_order

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_COMMAND_ENDPOINT",
    "DEFAULT_FEED_ENDPOINT",
    "AuthenticationRefused",
    "BadRequest",
    "BotbusError",
    "CaughtUp",
    "Client",
    "Conflict",
    "Connection",
    "CurveKeyPair",
    "CurveKeys",
    "Delivery",
    "DepthExceeded",
    "Fetched",
    "Forbidden",
    "FrameTooLarge",
    "HasRuns",
    "HelloReply",
    "HistoryPage",
    "InternalError",
    "InvalidDefinition",
    "InvalidField",
    "InvalidName",
    "InvalidTransition",
    "LeaseLost",
    "LimitReached",
    "Mailbox",
    "Message",
    "MissingField",
    "NotFound",
    "NotIdentified",
    "NotLeaseOwner",
    "Published",
    "PullSubscription",
    "PushSubscription",
    "RateLimited",
    "ReplyError",
    "RequestTimeout",
    "RunResult",
    "Sent",
    "ShuttingDown",
    "StepContext",
    "StepHandler",
    "StorageError",
    "Subscription",
    "UnknownOp",
    "UnsupportedVersion",
    "WorkflowExecutor",
    "make_key_pair",
    "read_key_pair",
    "read_public_key",
    "steps_in_order",
    "write_key_pair",
]
