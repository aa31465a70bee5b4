"""``nnip demo``: from the data nnip ships to an uncertainty-aware potential running MD.

1. inspect and validate the bundled GFN2-xTB ethanol data (300 K training, 1000 K test);
2. adversarial active learning (:func:`nnip.active.loop.run_active`): a SchNet ensemble trained
   on the 300 K data, attacked (maximise p(X) sigma_F^2(X)), the most uncertain candidates
   labelled by GFN2-xTB, retrained with a warm start, for ``generations`` rounds;
3. errors and uncertainty calibration of the first and the last ensemble on the 1000 K data;
4. Langevin MD at 300 K with the last ensemble, stopped if its force spread explodes, and the
   distance distributions of the run against the GFN2-xTB data;
5. ``report.json`` and a self-contained ``report.html`` in the output folder.

An interrupted demo continues with ``--resume`` (the active-learning step resumes where it
stopped; the other steps are quick and run again).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nnip.demo.argon import argon_nve, argon_potential
from nnip.demo.report import SUMMARY_ROWS, lookup, write_html
from nnip.demo.steps import FULL, QUICK, DemoSettings
from nnip.errors import ConfigError
from nnip.runlock import contents, remove, run_lock
from nnip.version import __version__

__all__ = ["run_demo", "DemoSettings", "FULL", "QUICK", "argon_nve", "argon_potential"]


def _prepare(out: Path, resume: bool, overwrite: bool) -> None:
    earlier = contents(out)
    if earlier and not resume:
        if not overwrite:
            raise ConfigError(f"{out}: holds an earlier demo; use --resume to continue it or --overwrite")
        remove(earlier)


def _write_json(report: dict[str, Any], path: Path) -> None:
    path.with_suffix(".tmp").write_text(json.dumps(report, indent=1, allow_nan=False))
    path.with_suffix(".tmp").replace(path)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary: the :data:`SUMMARY_ROWS` of the report."""
    lines = []
    for label, key, scale, unit in SUMMARY_ROWS:
        value = lookup(report, key)
        shown = "–" if value is None else (f"{value * scale:.4g}" if isinstance(value, float) else str(value))
        lines.append(f"  {label:<38} {shown:>10} {unit}")
    return lines


def run_demo(output: str | Path = "runs/demo", quick: bool = False, resume: bool = False, overwrite: bool = False,
             settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run every step into ``output``; returns the report (also in ``output/report.json``)."""
    s = settings or (QUICK if quick else FULL)
    with run_lock(output) as out:  # one writer per run folder
        _prepare(out, resume, overwrite)
        return _run(out, s, quick)


def _run(out: Path, s: DemoSettings, quick: bool) -> dict[str, Any]:
    """The steps of :func:`run_demo` in ``out``, checked and locked."""
    from nnip.demo import steps

    report: dict[str, Any] = {"nnip_version": __version__, "quick": quick, "settings": asdict(s), "seconds": {}}
    started = time.perf_counter()
    plan = (("data", "inspecting the bundled data", lambda: steps.inspect_data(out, s)),
            ("active_learning", f"training {s.members} SchNet members, {s.generations} generation(s) of adversarial "
             "active learning with GFN2-xTB", lambda: steps.active_learning(out, s)),
            ("evaluation", "evaluating on the 1000 K test set", lambda: steps.evaluate_ensembles(out, s)),
            ("attack", "analysing the attack", lambda: steps.attack_summary(out)),
            ("md", f"MD at 300 K, {s.md_steps} steps with uncertainty monitoring", lambda: steps.molecular_dynamics(out, s)))
    for number, (key, text, step) in enumerate(plan, start=1):
        print(f"[{number}/{len(plan)}] {text}", flush=True)
        begun = time.perf_counter()
        report[key] = step()
        report["seconds"][key] = round(time.perf_counter() - begun, 2)
    shutil.copyfile(out / "active" / "active.png", out / "figures" / "active.png")
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    report["figures"] = sorted(p.name for p in (out / "figures").glob("*.png"))
    _write_json(report, out / "report.json")
    page = write_html(report, out)
    print("\n".join(["", "nnip demo summary", *summary_lines(report), "",
                     f"  report   {page}  (open in a browser)", f"  numbers  {out / 'report.json'}",
                     f"  model    {steps.generation_model(out, s.generations)}",
                     f"  MD       {out / 'md' / 'trajectory.extxyz'}, {out / 'md' / 'md.csv'}"]), flush=True)
    return report
