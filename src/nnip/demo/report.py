"""report.html: one self-contained page (figures embedded as PNG data) built from report.json.

Every number shown in a table cell carries ``data-key`` (its path in report.json, dot-separated)
and ``data-scale`` (the factor applied for display), so a test can check the page against the JSON.
A small script marks ``body[data-figures]`` with "loaded/total" once the page has loaded.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_html", "lookup", "SUMMARY_ROWS"]

#: (label, report.json path, display scale, unit): the summary printed and shown at the top
SUMMARY_ROWS = (
    ("test force MAE, first ensemble", "evaluation.first.forces_mae", 1000, "meV/Å"),
    ("test force MAE, last ensemble", "evaluation.last.forces_mae", 1000, "meV/Å"),
    ("test energy MAE, last ensemble", "evaluation.last.energy_mae", 1000, "meV"),
    ("uncertainty-error rank correlation", "evaluation.last.uncertainty_spearman", 1, ""),
    ("miscalibration area (0 is ideal)", "evaluation.last.forces_miscalibration_area", 1, ""),
    ("GFN2-xTB labels added", "active_learning.-1.labels", 1, ""),
    ("MD steps run (0.5 fs)", "md.steps", 1, ""),
    ("MD temperature (second half)", "md.temperature_mean", 1, "K"),
    ("largest force std in MD", "md.max_force_std", 1000, "meV/Å"),
    ("total wall time", "seconds.total", 1, "s"),
)

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:0.4em 0}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.row figure{margin:0}
h2{border-bottom:1px solid #ddd;margin-top:1.6em}.note{color:#555;font-size:0.92em}
.warn{background:#fff4e0;border-left:4px solid #e8a33d;padding:0.5em 0.8em}"""

#: (label, key in evaluation.first/last, whether larger is better) of the metrics compared across generations
_COMPARED = (("energy MAE", "energy_mae", False), ("force MAE", "forces_mae", False),
             ("force NLL", "forces_nll", False), ("miscalibration area", "forces_miscalibration_area", False),
             ("uncertainty Spearman", "uncertainty_spearman", True))

_CHECK = """window.addEventListener('load',function(){var i=document.images,n=0;for(var k=0;k<i.length;k++)
{if(i[k].complete&&i[k].naturalWidth>0)n++;}document.body.setAttribute('data-figures',n+'/'+i.length);});"""


def lookup(report: dict[str, Any], key: str) -> Any:
    """The value at a dot-separated path of report.json (integers index lists, -1 the last)."""
    value: Any = report
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _number(value: Any, scale: float) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    shown = value * scale
    if isinstance(value, int) and scale == 1:
        return str(value)
    return f"{shown:.4g}"


def cell(report: dict[str, Any], key: str, scale: float = 1) -> str:
    value = lookup(report, key)
    return f'<td data-key="{key}" data-scale="{scale}">{_number(value, scale)}</td>'


def table(report: dict[str, Any], header: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> str:
    """A table whose first column is a label and whose other cells are report.json values."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(f"<tr><td>{html.escape(label)}</td>{''.join(cell(report, k, f) for k, f in cells)}</tr>"
                   for label, cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption class="note">{html.escape(caption)}</figcaption></figure>')


def _quick_banner(report: dict[str, Any]) -> str:
    """A warning that a quick run is a smoke test, or nothing."""
    if not report.get("quick"):
        return ""
    return ("<p class='warn'>This is a quick run (<code>nnip demo --quick</code>): every step with tiny budgets, "
            "a smoke test. Its numbers do not measure what nnip reaches; run <code>nnip demo</code> (or "
            "<code>make demo</code>) for that.</p>")


def _worse(report: dict[str, Any]) -> str:
    """A note naming each compared metric that got worse (by more than 5 %) from the first to the last
    generation, with what can cause it; nothing when none did."""
    first, last = report["evaluation"]["first"], report["evaluation"]["last"]
    worse = []
    for label, key, larger_is_better in _COMPARED:
        a, b = first.get(key), last.get(key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if (b < a - 0.05 * abs(a)) if larger_is_better else (b > a + 0.05 * abs(a)):
                worse.append(label)
    if not worse:
        return ""
    return (f"<p class='warn'>Worse in the last generation than in the first: {html.escape(', '.join(worse))} "
            "(table above). Labels of adversarial structures pull a model towards configurations that this "
            "test set does not contain, and a short retraining (a quick run's few epochs) may not recover "
            "the rest; more epochs per generation, or more generations, usually do.</p>")


def _sections(report: dict[str, Any], figures: Path) -> list[str]:
    summary = "<table><tr><th>quantity</th><th>value</th><th>unit</th></tr>" + "".join(
        f"<tr><td>{html.escape(label)}</td>{cell(report, key, scale)}<td>{unit}</td></tr>"
        for label, key, scale, unit in SUMMARY_ROWS) + "</table>"
    data_rows = [(f"{name}: {report['data'][name]['source']}", [(f"data.{name}.frames", 1),
                  (f"data.{name}.frames_with_forces", 1)]) for name in ("train", "test")]
    generations = report["active_learning"]
    active_rows = [(f"generation {int(row['generation'])}", [(f"active_learning.{g}.{k}", s) for k, s in (
        ("n_train", 1), ("labels", 1), ("test_forces_mae", 1000), ("test_energy_mae", 1000),
        ("test_forces_std_mean", 1000))]) for g, row in enumerate(generations)]
    metric_rows = [(label, [(f"evaluation.{which}.{key}", scale) for which in ("first", "last")]) for label, key, scale in (
        ("energy MAE (meV)", "energy_mae", 1000), ("energy MAE (meV/atom)", "energy_mae_per_atom", 1000),
        ("force MAE (meV/Å)", "forces_mae", 1000), ("force RMSE (meV/Å)", "forces_rmse", 1000),
        ("mean force std (meV/Å)", "forces_std_mean", 1000), ("uncertainty Spearman", "uncertainty_spearman", 1),
        ("force NLL", "forces_nll", 1), ("miscalibration area", "forces_miscalibration_area", 1))]
    attack_rows = [(label, [(f"attack.{key}", scale)]) for label, key, scale in (
        ("candidates", "candidates", 1), ("chosen", "chosen", 1), ("labelled", "labelled", 1),
        ("mean σ_F, training structures (meV/Å)", "train_spread_mean", 1000),
        ("mean σ_F, candidates (meV/Å)", "candidate_spread_mean", 1000),
        ("mean σ_F, labelled (meV/Å)", "label_spread_mean", 1000),
        ("mean true force RMSE, labelled (meV/Å)", "label_error_mean", 1000),
        ("mean GFN2 energy above the lowest training energy (eV)", "label_energy_above_train_min_mean", 1))]
    md_rows = [(label, [(f"md.{key}", scale)]) for label, key, scale in (
        ("steps", "steps", 1), ("ended by", "stopped", 1), ("temperature, second half (K)", "temperature_mean", 1),
        ("temperature std (K)", "temperature_std", 1), ("largest force std (meV/Å)", "max_force_std", 1000),
        ("largest force std on the training data (meV/Å)", "train_max_force_std", 1000),
        ("stop threshold (meV/Å)", "stop_threshold", 1000),
        ("smallest overlap of distance distributions with GFN2 (0..1)", "distance_overlap_min", 1))]
    return [
        "<h2>Summary</h2>", summary,
        "<h2>1. Data</h2><p class='note'>GFN2-xTB molecular dynamics of ethanol shipped with nnip: 300 K for "
        "training, 1000 K as a test set the training data never visits.</p>",
        table(report, ["file", "frames", "with forces"], data_rows),
        "<h2>2. Training</h2>", figure(figures / "learning_curves.png", "learning curves of generation 0, member 0"),
        "<h2>3. Evaluation on the 1000 K test set</h2>",
        table(report, ["metric", f"generation {report['evaluation']['first']['generation']}",
                       f"generation {report['evaluation']['last']['generation']}"], metric_rows),
        _worse(report),
        "<div class='row'>", figure(figures / "parity_energy.png", "energy parity, last ensemble"),
        figure(figures / "parity_forces.png", "force parity, last ensemble"),
        figure(figures / "calibration.png", "calibration of the force uncertainty, last ensemble"), "</div>",
        "<h2>4. Adversarial active learning (GFN2-xTB oracle)</h2>",
        table(report, ["generation", "training structures", "labels", "force MAE (meV/Å)", "energy MAE (meV)",
                       "mean force std (meV/Å)"], active_rows),
        figure(figures / "active.png", "per generation: test errors, labels, selection, displacement"),
        table(report, ["generation 0 attack", "value"], attack_rows),
        figure(figures / "attack.png", "adversarial candidates: force spread, and spread against true error"),
        "<h2>5. Molecular dynamics at 300 K with uncertainty monitoring</h2>", table(report, ["quantity", "value"], md_rows),
        "<div class='row'>", figure(figures / "md_monitor.png", "temperature and largest per-atom force std along the run"),
        figure(figures / "distances.png", "interatomic distance distributions, model MD vs GFN2-xTB data"), "</div>",
    ]


def write_html(report: dict[str, Any], out: Path) -> Path:
    """Write ``out/report.html`` from ``report`` and the PNGs in ``out/figures``."""
    body = "\n".join(_sections(report, out / "figures"))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>nnip demo report</title>"
            f"<style>{_STYLE}</style></head><body><h1>nnip demo: ethanol, from data to trusted MD</h1>"
            f"{_quick_banner(report)}"
            f"<p class='note'>nnip {html.escape(report['nnip_version'])}; numbers and file names in "
            f"report.json next to this page.</p>\n{body}\n<script>{_CHECK}</script></body></html>")
    path = out / "report.html"
    path.with_suffix(".tmp").write_text(page, encoding="utf-8")
    path.with_suffix(".tmp").replace(path)
    return path
