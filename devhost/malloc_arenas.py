"""glibc's malloc gives busy threads heaps of their own, up to eight per core, and a heap's free memory mostly stays
mapped. devhost runs many threads (one per HTTP request, the invocation pools, the trigger drivers), and a bulk
import beside the summariser spread its allocations over half a dozen heaps of up to 64 MiB each: a third more
resident memory for no speed (`python -m bench import`). Two heaps are plenty for a process that holds the GIL.

Set before any thread starts (heaps made earlier stay). Elsewhere than Linux with glibc this does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def glibc_mallopt() -> Any | None:
    """glibc's mallopt, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc heaps at `arenas`; True when it took effect."""
    mallopt = glibc_mallopt()
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))
