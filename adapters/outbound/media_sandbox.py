"""Parse untrusted media in a child process with resource limits, killed at a timeout.

FFmpeg's demuxers and decoders are large C code fed with bytes anyone can upload: a file
that makes them crash, spin or allocate without end must cost one child process, never the
api or the worker. Children are forked by a small zygote process (started once, on first
use, with `python -m adapters.outbound.media_sandbox`) that has PyAV and the parsing code
imported already, so a child costs a fork, not an interpreter start. (multiprocessing's
fork server would do the same, but on Python 3.11 it re-runs the parent's __main__ script,
the whole api, in every child.)

In the child, before any byte is parsed:
- RLIMIT_CPU: CPU seconds, then the kernel kills it (SIGXCPU); an alarm at the timeout too;
- RLIMIT_AS: its address space may grow by a budget, then allocations fail;
- RLIMIT_FSIZE=0 and RLIMIT_NOFILE=0: it can neither write a file nor open anything new;
- RLIMIT_CORE=0: a crash leaves no core file.
It reads the source through its socket to the parent (a file-like whose reads and seeks the
parent serves), or from a file it opened before the limits applied. What it sends back is
msgpack, checked against the expected result type: never a pickle, which an exploited
parser could use to run code in the parent. Whatever kills it, and
the wall-clock timeout, end in UnsupportedMedia; errors of the parent's own source
(storage, I/O) propagate as they are."""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import math
import os
import pickle
import pkgutil
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import msgspec

from application.errors import UnsupportedMedia

T = TypeVar("T")

# Imported once by the zygote, so each child starts with them loaded.
PRELOAD = ["adapters.outbound.pyav_media_inspector", "adapters.outbound.transcoding.index"]

# Decoders of the usual uploads.
WARM_DECODERS = ("h264", "hevc", "vp9", "vp8", "av1", "mpeg4", "mpeg2video", "mjpeg", "aac", "mp3", "opus", "vorbis")
STARTUP_TIMEOUT_S = 60.0
MAX_READ = 4 * 1024 * 1024  # the most one read asks of the parent
MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a result: a long video's index is a few MB
REFUSED = "The file could not be inspected safely: {why}."


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 20.0  # wall clock, from the child's start
    cpu_s: int = 10
    memory_bytes: int = 1 << 30  # address space on top of what the child starts with


class _Zygote:
    """The process that forks the children; restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def fork(self, job: bytes) -> Connection:
        """A new child running job; the parent's end of its connection."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._running(), [job], [theirs.fileno()])
                except OSError:  # it died since: once more with a new one
                    self._stop()
                    socket.send_fds(self._running(), [job], [theirs.fileno()])
        finally:
            theirs.close()
        return Connection(ours.detach())

    def _running(self) -> socket.socket:
        if self._process is None or self._process.poll() is not None or self._control is None:
            self._stop()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            # A fresh interpreter with none of our settings: no key, password or URL in its memory
            # or environment for an exploited parser to find.
            env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                env=env, stdin=subprocess.DEVNULL,
            )
            theirs.close()
            self._control = ours
        return self._control

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote exits when its control socket closes
            self._control = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None


_zygote = _Zygote()
atexit.register(_zygote._stop)


def run_sandboxed(
    target: Callable[..., T], source: BinaryIO | Path, limits: SandboxLimits, *args: Any, returns: type[T],
) -> T:
    """target(reader, *args) in a confined child; its result (of type `returns`), or
    UnsupportedMedia if the child is killed, crashes or outlives the timeout. target must be
    a module-level function."""
    path = str(source) if isinstance(source, Path) else None
    conn = _zygote.fork(pickle.dumps((target, path, limits, args)))  # to the child: trusted, so pickle
    try:
        # The timeout runs from the child's start: a zygote still starting up is not the file's fault.
        if not conn.poll(STARTUP_TIMEOUT_S):
            raise RuntimeError("the media sandbox did not start a child")
        _receive(conn)
        payload = _serve(conn, source, time.monotonic() + limits.timeout_s)
        try:
            return msgspec.convert(payload, returns, dec_hook=_decode_fraction)
        except msgspec.ValidationError:
            raise UnsupportedMedia(REFUSED.format(why="the parser answered nonsense")) from None
    finally:
        conn.close()  # a child still running reads EOF, or its alarm ends it


# From the child: never pickle, which would run whatever an exploited parser sent. Plain
# msgpack arrays, checked field by field.
def _send(conn: Connection, *message: Any) -> None:
    conn.send_bytes(msgspec.msgpack.encode(message, enc_hook=_encode_fraction))


def _receive(conn: Connection) -> list:
    try:
        message = msgspec.msgpack.decode(conn.recv_bytes(MAX_MESSAGE_BYTES))
    except (EOFError, OSError):
        raise UnsupportedMedia(REFUSED.format(why="the parser crashed or ran out of resources")) from None
    except msgspec.DecodeError:
        raise UnsupportedMedia(REFUSED.format(why="the parser answered nonsense")) from None
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise UnsupportedMedia(REFUSED.format(why="the parser answered nonsense"))
    return message


def _encode_fraction(value: Any) -> Any:
    if isinstance(value, Fraction):
        return [value.numerator, value.denominator]
    raise NotImplementedError(type(value))


def _decode_fraction(kind: type, value: Any) -> Any:
    if kind is Fraction and isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return Fraction(*value)
    raise NotImplementedError(kind)


def _serve(conn: Connection, source: BinaryIO | Path, deadline: float) -> Any:
    """Answer the child's reads and seeks until it returns a result, dies or runs out of time."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not conn.poll(remaining):
            raise UnsupportedMedia(REFUSED.format(why="parsing it took too long"))
        match _receive(conn):
            case ["read", int(size)]:
                conn.send_bytes(source.read(size if 0 < size <= MAX_READ else MAX_READ))  # type: ignore[union-attr]
            case ["seek", int(offset), int(whence)] if whence in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
                conn.send_bytes(msgspec.msgpack.encode(source.seek(offset, whence)))  # type: ignore[union-attr]
            case ["tell"]:
                conn.send_bytes(msgspec.msgpack.encode(source.tell()))  # type: ignore[union-attr]
            case ["result", payload]:
                return payload
            case ["unsupported", str(reason)]:
                raise UnsupportedMedia(reason)
            case ["error", str(reason)]:
                raise RuntimeError(f"the media sandbox failed: {reason}")
            case _:
                raise UnsupportedMedia(REFUSED.format(why="the parser answered nonsense"))


class PipeReader(io.RawIOBase):
    """The parent's source, read through the socket."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        _send(self._conn, "read", -1 if size is None else size)
        return self._conn.recv_bytes()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        _send(self._conn, "seek", offset, whence)
        return msgspec.msgpack.decode(self._conn.recv_bytes())

    def tell(self) -> int:
        _send(self._conn, "tell")
        return msgspec.msgpack.decode(self._conn.recv_bytes())


def _confine(limits: SandboxLimits) -> None:
    with open("/proc/self/statm") as statm:  # the last file it opens
        address_space = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = address_space + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, 0))
    signal.alarm(math.ceil(limits.timeout_s) + 1)  # default action: the kernel ends it


def _child_main(conn: Connection, target: Callable[..., Any], path: str | None, limits: SandboxLimits,
                args: tuple) -> None:
    try:
        reader: Any = open(path, "rb") if path is not None else PipeReader(conn)  # noqa: SIM115
        _confine(limits)
        _send(conn, "started")
        _send(conn, "result", target(reader, *args))
    except UnsupportedMedia as error:
        _send(conn, "unsupported", str(error))
    except MemoryError:
        _send(conn, "unsupported", REFUSED.format(why="it needs too much memory"))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        _send(conn, "error", f"{type(error).__name__}: {error}")


def _preload() -> None:
    """The parsing code and every PyAV module: PyAV imports some lazily, and a confined child
    can open no file to import one."""
    import av

    for module in PRELOAD:
        importlib.import_module(module)
    for info in pkgutil.walk_packages(av.__path__, "av."):
        importlib.import_module(info.name)
    for codec in WARM_DECODERS:  # their one-time table setup, done once here instead of in every child
        try:
            av.CodecContext.create(codec, "r").open()
        except (av.error.FFmpegError, ValueError):
            continue


def _zygote_main(control_fd: int) -> None:
    _preload()
    gc.freeze()  # the collector then leaves the preloaded objects' pages shared with the children
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        job, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
        if not job:
            return  # the parent is gone
        if os.fork() == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            conn = Connection(fds[0])
            try:
                target, path, limits, args = pickle.loads(job)
            except BaseException as error:  # noqa: BLE001
                _send(conn, "error", f"the job could not be read: {error}")
                os._exit(1)
            _child_main(conn, target, path, limits, args)
            os._exit(0)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    _zygote_main(int(sys.argv[1]))
