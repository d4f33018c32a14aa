"""Functions the media sandbox tests run in its child: a small module, cheap to import there."""

from __future__ import annotations

import io
import os
import signal


def allocate(_: object, size: int) -> int:
    return len(bytearray(size))


def crash(_: object) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def spin(_: object) -> None:
    while True:
        pass


def write_a_file(_: object, path: str) -> None:
    with open(path, "w") as file:
        file.write("escaped")


def read_all(reader: io.RawIOBase) -> bytes:
    return reader.read(-1)


def environment(_: object) -> dict[str, str]:
    return dict(os.environ)


class _Opens:
    """Unpickling this creates the file at path: what an exploited parser might send."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def send_a_pickle(reader: object, path: str) -> None:
    import pickle

    reader._conn.send_bytes(pickle.dumps(("result", _Opens(path))))  # type: ignore[attr-defined]
