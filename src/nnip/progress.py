"""Progress of the long stages (training a member, sampling, labelling, MD): one bar per stage.

A stage's bar shows its position, the elapsed time and an estimate of the rest, is drawn only
when standard error is a terminal (a log file or pipe gets nothing) and disappears when the
stage ends, so a run's output is its one-line summaries.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm

__all__ = ["stage_bar"]


def stage_bar(total: int, label: str | None, unit: str, initial: int = 0, enabled: bool = True,
              iterable: Iterable | None = None) -> tqdm:
    """A bar of ``total`` ``unit``s named ``label`` (iterating ``iterable`` if given); disabled
    without a label, when not ``enabled`` (another rank's process) or when standard error is not
    a terminal."""
    shown = label is not None and enabled and sys.stderr.isatty()
    return tqdm(iterable, total=total, initial=initial, desc=label, unit=unit, leave=False, dynamic_ncols=True,
                disable=not shown)
