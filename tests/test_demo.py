"""`nnip demo --quick`: every step runs, report.json and report.html agree, the page renders."""


import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import nnip
from nnip.active.store import Store
from nnip.cli import main
from nnip.demo import QUICK, run_demo
from nnip.data import bundled
from nnip.demo.report import lookup
from nnip.md.analysis import read_md_log

pytestmark = pytest.mark.xdist_group("demo")  # one quick demo for the module (make test: --dist loadgroup)
FIGURES = {"active.png", "attack.png", "calibration.png", "distances.png", "learning_curves.png", "md_monitor.png",
           "parity_energy.png", "parity_forces.png"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--quick", "--output", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def _numbers(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for k, v in enumerate(value):
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def test_report_json_is_complete_and_finite(demo):
    out, report = demo
    assert all(math.isfinite(v) for _, v in _numbers(report))
    for key in ("evaluation.first.forces_mae", "evaluation.last.forces_mae", "evaluation.last.energy_mae",
                "evaluation.last.uncertainty_spearman", "evaluation.last.forces_miscalibration_area",
                "md.temperature_mean", "md.max_force_std", "attack.candidate_spread_mean", "seconds.total"):
        assert isinstance(lookup(report, key), float), key
    assert set(report["figures"]) == FIGURES
    for name in FIGURES:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_number_on_the_page_is_the_one_in_report_json(demo):
    out, report = demo
    page = (out / "report.html").read_text()
    cells = re.findall(r'<td data-key="([^"]+)" data-scale="([^"]+)">([^<]*)</td>', page)
    assert len(cells) > 50
    for key, scale, shown in cells:
        value = lookup(report, key)
        if isinstance(value, (int, float)):
            assert float(shown) == pytest.approx(value * float(scale), rel=1e-3, abs=1e-12), key
        else:
            assert shown == ("–" if value is None else value), key
    # self-contained: every image is embedded, nothing is fetched
    assert page.count("<img ") == len(FIGURES) and page.count('src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in page and "https://" not in page


def test_the_steps_did_what_the_report_says(demo):
    out, report = demo
    active = report["active_learning"]
    assert [row["generation"] for row in active] == [0, 1]
    labelled = Store(out / "active" / "store.db").labelled()
    new = [a for a in labelled if a.info["sampler"] == "adversarial"]
    assert len(new) == active[-1]["labels"] == report["attack"]["labelled"] >= 1
    assert active[1]["n_train"] == active[0]["n_train"] + len(new)
    # warm-started generation 1 trained warm_epochs epochs from generation 0's weights
    resolved = yaml.safe_load((out / "active" / "gen_01" / "model" / "config.yaml").read_text())
    assert resolved["training"]["max_epochs"] == QUICK.warm_epochs
    assert resolved["model"]["init"].endswith("gen_00/model/model.pt")
    metrics = (out / "active" / "gen_01" / "model" / "members" / "member_0" / "metrics.csv").read_text()
    assert len(metrics.strip().splitlines()) == 1 + QUICK.warm_epochs
    md = report["md"]
    log = read_md_log(out / "md" / "md.csv")
    assert md["steps"] == (QUICK.md_steps if md["stopped"] == "steps" else int(log["step"][-1]))
    assert md["stopped"] == "steps" or md["max_force_std"] > md["stop_threshold"]
    assert md["max_force_std"] == pytest.approx(max(np.nanmax(log["max_force_std"]), md["max_force_std"]))
    assert md["stop_threshold"] == pytest.approx(QUICK.stop_factor * md["train_max_force_std"])


def test_resume_of_a_finished_demo_trains_nothing_and_reports_the_same(demo, capsys):
    out, report = demo
    stamp = (out / "active" / "gen_00" / "model" / "model.pt").stat().st_mtime_ns
    again = run_demo(out, quick=True, resume=True)
    assert (out / "active" / "gen_00" / "model" / "model.pt").stat().st_mtime_ns == stamp
    assert again["evaluation"] == report["evaluation"]
    assert "nnip demo summary" in capsys.readouterr().out


def test_an_earlier_demo_is_not_overwritten_without_asking(demo, capsys):
    out, _ = demo
    assert main(["demo", "--quick", "--output", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"nnip demo: error: {out}: holds an earlier demo; use --resume to continue it or --overwrite"
    assert (out / "report.html").is_file()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _browser(out: Path, *arguments: str) -> subprocess.CompletedProcess:
    profile = out.parent / f"chromium-profile-{len(arguments)}"
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", *arguments,
               (out / "report.html").resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(_chromium() is None and not os.environ.get("NNIP_REQUIRE_SYSTEM_PACKAGES"),
                    reason="Chromium is not installed (.ci/run installs it and sets NNIP_REQUIRE_SYSTEM_PACKAGES)")
def test_report_renders_in_headless_chromium_with_every_figure(demo):
    out, report = demo
    assert _chromium() is not None, "NNIP_REQUIRE_SYSTEM_PACKAGES is set but no chromium is on PATH"
    dom = _browser(out, "--dump-dom").stdout
    loaded = re.search(r'<body data-figures="(\d+)/(\d+)"', dom)
    assert loaded is not None, "the page's load script did not run"
    assert loaded.group(1) == loaded.group(2) == str(len(report["figures"]))
    shot = out.parent / "screenshot.png"
    _browser(out, f"--screenshot={shot}", "--window-size=1200,3000")
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    not_white = (pixels < 0.9).any(axis=2)
    assert not_white.mean() > 0.02  # text and figures, not a blank page
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.2
    assert coloured.mean() > 0.002  # the figures' coloured lines and points were painted


def test_an_active_learning_generation_does_not_make_energies_worse(demo):
    """The quick demo's generation 1 had a 1.8 eV energy MAE on the 1000 K set against 0.24 eV for generation 0,
    all predictions about 0.2 eV/atom low: the force-dominated loss had moved the warm-started members' energy
    baseline, which each member's shift is now refitted to (nnip.training.reference.refit_shift)."""
    out, report = demo
    first, last = report["evaluation"]["first"], report["evaluation"]["last"]
    assert last["energy_mae"] <= 1.25 * first["energy_mae"], (first["energy_mae"], last["energy_mae"])
    test = nnip.read(bundled("ethanol_gfn2_1000K.extxyz"))
    calculator = nnip.Calculator(nnip.load(out / "active" / "gen_01" / "model" / "model.pt"))
    signed = []
    for atoms in test:
        predicted = atoms.copy()
        predicted.calc = calculator
        signed.append((predicted.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
    assert abs(np.mean(signed)) < 0.05  # eV/atom; 1000 K lies above the 300 K training data: some bias remains


def test_the_page_says_it_is_a_quick_run_and_names_what_got_worse(demo):
    from nnip.demo.report import write_html

    out, report = demo
    assert "This is a quick run" in (out / "report.html").read_text()
    changed = json.loads(json.dumps(report))
    changed["quick"] = False
    changed["evaluation"]["last"]["energy_mae"] = 2 * changed["evaluation"]["first"]["energy_mae"]
    changed["evaluation"]["last"]["forces_mae"] = 0.5 * changed["evaluation"]["first"]["forces_mae"]
    page = write_html(changed, out).read_text()
    assert "This is a quick run" not in page
    assert "Worse in the last generation than in the first: energy MAE" in page and "force MAE" not in page.split(
        "Worse in the last generation")[1].split("</p>")[0]
    write_html(report, out)  # the demo's own page again, for the other tests


def test_on_a_terminal_each_stage_has_one_progress_bar(tmp_path):
    """One bar per stage (each member's training in each generation, the attack, the labelling, the MD), with
    its position, elapsed time and an estimate; off a terminal (every other test here) there are none."""
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal 160 wide
    process = subprocess.Popen([sys.executable, "-m", "nnip", "demo", "--quick", "--output", str(tmp_path / "run")],
                               stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    output = b""
    while chunk := _read(primary):
        output += chunk
    assert process.wait() == 0
    lines = output.decode(errors="replace").replace("\r", "\n").splitlines()
    bars = [line for line in lines if re.match(r"generation \d/1, member \d/4: +\d+%.*\d+/\d+ \[\d\d:\d\d<", line.strip())]
    assert {line.strip().split(":")[0] for line in bars} == {f"generation {g}/1, member {m}/4" for g in (0, 1)
                                                          for m in range(1, 5)}
    assert any(re.search(r"step \d+/\d+ loss", line) for line in bars)
    for stage in (r"generation 0/1 sampling", r"generation 0/1 labelling \(gfn2\)", "MD"):
        assert any(re.match(stage + r": +\d+%.*\d+/\d+ \[\d\d:\d\d<", line.strip()) for line in lines), stage


def _read(descriptor: int) -> bytes:
    """The next chunk of a pseudo-terminal's output; b"" once its other end is closed."""
    try:
        return os.read(descriptor, 65536)
    except OSError:
        return b""
