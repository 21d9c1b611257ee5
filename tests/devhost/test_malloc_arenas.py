"""devhost caps glibc's malloc heaps: threads share two instead of getting one each."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from devhost.malloc_arenas import ARENAS, glibc_mallopt

_THREADS_MALLOC = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, threading
    from devhost.malloc_arenas import limit_malloc_arenas
    if sys.argv[1] == "capped":
        assert limit_malloc_arenas()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    ready, release = threading.Barrier(7), threading.Event()
    def work():
        libc.malloc(4096)  # a thread's first allocation picks its heap
        ready.wait()
        release.wait()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    ready.wait()
    libc.malloc_stats()  # one "Arena n:" block per heap, on stderr
    release.set()
    for thread in threads:
        thread.join()
    """
)


def _heaps(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_MALLOC, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(glibc_mallopt() is None, reason="not glibc: devhost leaves the allocator alone")
def test_threads_share_at_most_two_malloc_heaps_under_devhost() -> None:
    assert _heaps("default") > ARENAS  # the test can tell: six threads get heaps of their own by default
    assert _heaps("capped") <= ARENAS
