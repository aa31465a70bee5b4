"""The command line: help texts with examples, exit codes, one-line errors."""

import re
import subprocess
import sys

import pytest

from nnip.cli import main
from nnip.data import bundled


COMMANDS = ("info", "train", "evaluate", "label", "md", "relax", "analyze", "sample", "attack", "active", "export",
            "deploy", "demo")


def test_help_lists_commands_and_each_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert tuple(re.findall(r"^    ([a-z]+) ", text, flags=re.M)) == COMMANDS
    for command in COMMANDS:
        assert command in text
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert re.search(rf"examples?:\s+nnip {command} ", capsys.readouterr().out), command


def test_info_summarises_bundled_data(capsys):
    assert main(["info", str(bundled("ethanol_train.extxyz")), "--require", "energy,forces"]) == 0
    out = capsys.readouterr().out
    assert "frames:        250 valid of 250" in out
    assert "C (500), H (1500), O (250)" in out
    assert "C2H6O x250" in out
    assert "0 periodic, 250 non-periodic" in out
    assert "problems:      none" in out


def test_info_lists_every_problem_with_status_1(tmp_path, capsys):
    frame = "2\nenergy=1.0 pbc=\"F F F\"\nH 0 0 0\nH 0.1 0 0\n"
    path = tmp_path / "bad.xyz"
    path.write_text(frame + frame.replace("energy=1.0", "energy=nan"))
    assert main(["info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "problems:      3" in out
    assert out.count("overlapping") == 2 and "frame 1: energy is nan" in out


def test_user_error_exits_2_with_one_line_and_no_traceback(tmp_path):
    missing = tmp_path / "missing.extxyz"
    result = subprocess.run([sys.executable, "-m", "nnip.cli", "info", str(missing)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"nnip info: error: {missing}: no such file"
    assert "Traceback" not in result.stderr


def test_info_reads_custom_label_names(tmp_path, capsys):
    frame = ('2\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-1.5 pbc="F F F"\n'
             "H 0 0 0 0.1 0 0\nH 0.74 0 0 -0.1 0 0\n")
    path = tmp_path / "ref.extxyz"
    path.write_text(frame)
    assert main(["info", str(path), "--require", "energy,forces"]) == 1
    assert "frame 0: missing energy" in capsys.readouterr().out
    assert main(["info", str(path), "--require", "energy,forces", "--energy-key", "REF_energy",
                 "--forces-key", "REF_forces"]) == 0
    out = capsys.readouterr().out
    assert "problems:      none" in out and "-1.5000 .. -1.5000 eV" in out


def test_every_option_is_described_and_shows_its_default(capsys):
    import argparse

    from nnip.cli import _parser, _subcommands

    for parser in _subcommands(_parser()):
        undescribed = [a.option_strings or a.dest for a in parser._actions
                       if not a.help and not isinstance(a, argparse._HelpAction)]
        assert not undescribed, (parser.prog, undescribed)
    with pytest.raises(SystemExit):
        main(["md", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "MD steps to run (default: 1000)" in text and "--log LOG CSV log --dtype" in text  # no "(default: None)"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "docs/configuration.md" in capsys.readouterr().out


def test_the_command_line_starts_without_the_heavy_libraries():
    """`nnip --help` pays only for argparse: torch, e3nn, matplotlib, tblite and ASE load when a command needs them."""
    code = ("import sys, nnip.cli; heavy = ('torch', 'e3nn', 'matplotlib', 'tblite', 'ase'); "
            "print([m for m in heavy if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_missing_model_path_is_named_not_taken_for_an_oracle(tmp_path, capsys):
    start = tmp_path / "start.extxyz"
    start.write_text("1\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n")
    assert main(["md", "runs/nope/model.pt", str(start)]) == 2
    assert capsys.readouterr().err.strip() == "nnip md: error: runs/nope/model.pt: no such model file"
