"""Keep freed memory in the process (glibc), which speeds up large systems 2-3x.

glibc returns every large block (above 32 MB always, above a dynamic threshold often) to
the kernel when freed, so each MD step faults its tensors' pages in again; on a 1e5-atom
Lennard-Jones step this costs two thirds of the time. :func:`retain_freed_memory` tells
glibc to serve all blocks from its heap and never trim it, which keeps the process at its
peak memory but removes the page faults. jemalloc (LD_PRELOAD with decay off) has the
same effect. Nothing calls this implicitly: long MD runs and benchmarks opt in.
:func:`returns_freed_memory` tells which case a process runs in (models do not look: their
streaming follows the potential's memory setting, nnip.nn.execution.Memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["retain_freed_memory", "returns_freed_memory"]

#: allocators that keep freed pages mapped (with their default or benchmark settings), recognised
#: by their library in the process's memory map (LD_PRELOAD)
_RETAINING_ALLOCATORS = ("libjemalloc", "libtcmalloc", "libmimalloc")
_retaining = False  # set by retain_freed_memory()

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; returns False where that is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    global _retaining
    _retaining = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _retaining


def returns_freed_memory() -> bool:
    """True when this process's malloc gives large freed blocks back to the kernel, as glibc's does by
    default, so that every large allocation faults its pages in again; False under a preloaded
    jemalloc, tcmalloc or mimalloc, after :func:`retain_freed_memory`, or off Linux."""
    return not _retaining and _glibc_malloc()


@functools.lru_cache(maxsize=1)
def _glibc_malloc() -> bool:
    """Linux with none of the known retaining allocators mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            mapped = maps.read()
    except OSError:
        return False
    return not any(name in mapped for name in _RETAINING_ALLOCATORS)
