"""Run a benchmark under glibc malloc and under jemalloc, since the allocator changes large-system timings 2-3x.

jemalloc is used with its page decay disabled (MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1),
so freed pages are reused instead of being returned to the kernel and faulted in again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

JEMALLOC_CANDIDATES = [
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
]
CHILD_FLAG = "NNIP_BENCH_ALLOCATOR"


def current_allocator() -> str:
    return os.environ.get(CHILD_FLAG, "glibc malloc")


def find_jemalloc() -> str | None:
    return next((p for p in JEMALLOC_CANDIDATES if Path(p).exists()), None)


def rerun_under_each_allocator(choice: str) -> bool:
    """In the parent: run this script again once per allocator and return True. In a child: return False."""
    if CHILD_FLAG in os.environ:
        return False
    for allocator in (["glibc", "jemalloc"] if choice == "both" else [choice]):
        env = dict(os.environ)
        if allocator == "jemalloc":
            library = find_jemalloc()
            if library is None:
                print("jemalloc: not installed (Debian: apt install libjemalloc2); skipped\n")
                continue
            env.update(LD_PRELOAD=library, MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1")
            env[CHILD_FLAG] = f"jemalloc ({library}, decay off)"
        else:
            env[CHILD_FLAG] = "glibc malloc"
        subprocess.run([sys.executable, *sys.argv], env=env, check=True)
        print()
    return True
