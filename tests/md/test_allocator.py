"""nnip.md.allocator: which malloc a process runs (glibc returns freed memory until told to retain it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
PROBE = ("from nnip.md.allocator import retain_freed_memory, returns_freed_memory; "
         "before = returns_freed_memory(); retain_freed_memory(); print(before, returns_freed_memory())")


def probe(env: dict | None = None) -> list[str]:
    """In a fresh process (retain_freed_memory changes malloc for good): before and after retaining."""
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          env=env).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc and /proc are Linux's")
def test_glibc_returns_freed_memory_until_told_to_retain_it():
    assert probe() == ["True", "False"]


@pytest.mark.skipif(not Path(JEMALLOC).exists() and not os.environ.get("NNIP_REQUIRE_SYSTEM_PACKAGES"),
                    reason="libjemalloc2 is not installed (.ci/run installs it and sets NNIP_REQUIRE_SYSTEM_PACKAGES)")
def test_a_preloaded_jemalloc_is_recognised():
    assert probe({**os.environ, "LD_PRELOAD": JEMALLOC})[0] == "False"
