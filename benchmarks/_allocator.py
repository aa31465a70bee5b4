"""Run a benchmark under several allocator settings, since they change large-system timings 2-3x.

- glibc: the default malloc, which returns large freed blocks to the kernel;
- glibc-retain: glibc after ``nnip.md.allocator.retain_freed_memory()`` (no mmap, no trim);
- jemalloc: LD_PRELOAD with page decay disabled (MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1).
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


CHOICES = ["all", "glibc", "glibc-retain", "jemalloc"]


def current_allocator() -> str:
    """Describe the allocator of this process, applying glibc-retain when that was asked for."""
    name = os.environ.get(CHILD_FLAG, "glibc malloc")
    if name.startswith("glibc-retain"):
        from nnip.md.allocator import retain_freed_memory

        name += " (applied)" if retain_freed_memory() else " (not glibc: no effect)"
    return name


def find_jemalloc() -> str | None:
    return next((p for p in JEMALLOC_CANDIDATES if Path(p).exists()), None)


def rerun_under_each_allocator(choice: str) -> bool:
    """In the parent: run this script again once per allocator and return True. In a child: return False."""
    if CHILD_FLAG in os.environ:
        return False
    for allocator in (CHOICES[1:] if choice == "all" else [choice]):
        env = dict(os.environ)
        if allocator == "jemalloc":
            library = find_jemalloc()
            if library is None:
                print("jemalloc: not installed (Debian: apt install libjemalloc2); skipped\n")
                continue
            env.update(LD_PRELOAD=library, MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1")
            env[CHILD_FLAG] = f"jemalloc ({library}, decay off)"
        elif allocator == "glibc-retain":
            env[CHILD_FLAG] = "glibc-retain: glibc malloc with nnip.md.allocator.retain_freed_memory()"
        else:
            env[CHILD_FLAG] = "glibc malloc"
        subprocess.run([sys.executable, *sys.argv], env=env, check=True)
        print()
    return True
