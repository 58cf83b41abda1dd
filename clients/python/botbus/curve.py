"""CURVE keys for a daemon run with ``--auth curve``.

The files are the ones ``botbus keygen FILE`` writes and botbusd reads
(docs/PROTOCOL.md, "Authentication (CURVE)"): ``name = value`` lines, where a
line whose first non-blank character is ``#`` is a comment. Only there: ``#``
is one of Z85's characters, so a key may hold one.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

KEY_LENGTH = 40
"""A CURVE key in Z85 text: 40 characters for 32 bytes."""


@dataclass(frozen=True)
class CurveKeyPair:
    """A public and secret key, as Z85 text."""

    public_key: str
    secret_key: str


@dataclass(frozen=True)
class CurveKeys:
    """What a CURVE client needs: its own key pair and the daemon's public key."""

    public_key: str
    secret_key: str
    server_public_key: str

    @classmethod
    def from_files(cls, key_pair_file: str | os.PathLike[str], server_key: str | os.PathLike[str]) -> CurveKeys:
        """The bot's pair from its key file, and the daemon's public key from
        its ``.pub`` file (or any file with a ``public-key`` line, or the 40
        characters themselves)."""
        pair = read_key_pair(key_pair_file)
        return cls(pair.public_key, pair.secret_key, read_public_key(server_key))

    def apply(self, socket: zmq.Socket) -> None:  # type: ignore[type-arg]
        """Makes ``socket`` a CURVE client of the daemon; call before connect."""
        socket.curve_serverkey = self.server_public_key.encode()
        socket.curve_publickey = self.public_key.encode()
        socket.curve_secretkey = self.secret_key.encode()


def is_key(text: str) -> bool:
    """Whether ``text`` is 40 Z85 characters that decode to a 32-byte key."""
    if len(text) != KEY_LENGTH:
        return False
    try:
        return len(z85.decode(text.encode())) == 32  # type: ignore[no-untyped-call]
    except (ValueError, KeyError, struct.error):  # pyzmq's ways of saying "not Z85"
        return False


def make_key_pair() -> CurveKeyPair:
    """A fresh key pair from libzmq."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support")
    public, secret = zmq.curve_keypair()
    return CurveKeyPair(public.decode(), secret.decode())


def _entries(path: Path) -> list[tuple[str, str, int]]:
    entries = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            content = line.strip()
            if not content or content.startswith("#"):
                continue
            name, equals, value = content.partition("=")
            if not equals or not name.strip():
                raise ValueError(f"{path}:{number}: expected NAME = VALUE")
            entries.append((name.strip(), value.strip(), number))
    return entries


def _checked(path: Path, name: str, value: str, number: int) -> str:
    if not is_key(value):
        raise ValueError(f"{path}:{number}: {name} is not a CURVE key ({KEY_LENGTH} Z85 characters)")
    return value


def read_key_pair(path: str | os.PathLike[str]) -> CurveKeyPair:
    """Reads a key pair file (``public-key`` and ``secret-key`` lines).

    Raises ValueError naming the file and line of a malformed entry, or
    OSError when the file cannot be read.
    """
    file = Path(path)
    found: dict[str, str] = {}
    for name, value, number in _entries(file):
        if name not in ("public-key", "secret-key"):
            raise ValueError(f"{file}:{number}: unknown name '{name}'")
        if name in found:
            raise ValueError(f"{file}:{number}: {name} given twice")
        found[name] = _checked(file, name, value, number)
    if len(found) != 2:
        raise ValueError(f"{file}: a key pair file needs both public-key and secret-key lines")
    return CurveKeyPair(found["public-key"], found["secret-key"])


def read_public_key(file_or_key: str | os.PathLike[str]) -> str:
    """A public key given as its 40 Z85 characters, or as a file holding a
    ``public-key`` line (a ``.pub`` file or a key pair file)."""
    text = os.fspath(file_or_key)
    if is_key(text) and not os.path.exists(text):
        return text
    file = Path(text)
    keys = [(value, number) for name, value, number in _entries(file) if name == "public-key"]
    if len(keys) != 1:
        raise ValueError(f"{file}: expected one public-key line, found {len(keys)}")
    value, number = keys[0]
    return _checked(file, "public-key", value, number)


def write_key_pair(path: str | os.PathLike[str], pair: CurveKeyPair) -> None:
    """Writes ``path`` (mode 0600, both keys) and ``path.pub`` (mode 0644,
    the public key) in ``botbus keygen``'s format. Refuses to replace either
    file (FileExistsError): someone may rely on the key in it."""
    file = Path(path)
    pub = file.with_name(file.name + ".pub")
    if pub.exists():
        raise FileExistsError(f"cannot create {pub}: it exists")
    _write_new(file, f"# botbus CURVE key pair (keep secret)\npublic-key = {pair.public_key}\n"
                     f"secret-key = {pair.secret_key}\n", 0o600)
    _write_new(pub, f"# botbus CURVE public key\npublic-key = {pair.public_key}\n", 0o644)


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL with the mode at creation: the secret is never readable by
    # others, not even between open and chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits the mode asked for
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
