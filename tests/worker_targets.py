"""Functions the worker tests run in a checking process (it imports them by module name)."""

from __future__ import annotations

import os
import time


def pid(data: bytes) -> list[bytes]:
    return [str(os.getpid()).encode(), str(os.nice(0)).encode(), data]


def sleep(seconds: float, data: bytes) -> list[bytes]:
    time.sleep(seconds)
    return [b"woke"]


def allocate(megabytes: int, data: bytes) -> list[bytes]:
    block = bytearray(megabytes * 1024 * 1024)
    return [bytes(block[:1])]


def fail(data: bytes) -> list[bytes]:
    raise RuntimeError("a bug")


def send(megabytes: int, data: bytes) -> list[bytes]:
    return [bytes(megabytes * 1024 * 1024)]
