"""Every code block of README.md and docs/*.md runs, and the configuration reference is current.

Blocks of one page run in order in one temporary folder (which links ``src`` and ``configs``
of the repository, so paths relative to the repository root work) and share one Python
namespace: ``python`` blocks are executed, ``pycon`` blocks are doctests (outputs compared),
``bash`` blocks run under ``bash -euo pipefail`` (``make`` lines as ``make -n`` in the
repository, since the test suite itself is what ``make test`` runs), and ``yaml`` blocks are
configs checked by the strict parser (and written to the file their first comment names).
A block in any other language, or in none, fails the test.
"""

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnip.training import parse_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.M | re.S)


def code_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, line number) of each fenced block."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text[:m.start()].count("\n") + 1) for m in FENCE.finditer(text)]


def _run_bash(code: str, folder: Path, where: str) -> None:
    make = [line for line in code.splitlines() if line.startswith("make ")]
    for line in make:
        target = line.split()[1]
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"{where}: make {target}: {result.stderr}"
    rest = "\n".join(line for line in code.splitlines() if not line.startswith("make "))
    if not rest.strip():
        return
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", rest], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{where}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def _run_yaml(code: str, folder: Path, where: str) -> None:
    data = yaml.safe_load(code)
    named = re.match(r"#\s*(\S+\.ya?ml)\b", code)
    if named:
        (folder / named.group(1)).write_text(code)
    assert isinstance(data, dict) and "data" in data and "model" in data, f"{where}: not a run config"
    parse_config({k: v for k, v in data.items() if k != "active"}, where=where)
    if "active" in data:
        from nnip.active.samplers import ActiveSettings
        from nnip.strict import from_dict

        from_dict(ActiveSettings, data["active"], "active")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_code_block_runs(page, tmp_path, monkeypatch):
    for name in ("src", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    blocks = code_blocks(page)
    for language, code, line in blocks:
        where = f"{page.name}:{line}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)
        elif language == "pycon":
            test = doctest.DocTestParser().get_doctest(code, namespace, where, str(page), line)
            result = runner.run(test, clear_globs=False)
            namespace.update(test.globs)  # DocTest works on a copy of the namespace
            assert result.failed == 0, f"{where}: {result.failed} doctest example(s) failed (output above)"
        elif language == "bash":
            _run_bash(code, tmp_path, where)
        elif language == "yaml":
            _run_yaml(code, tmp_path, where)
        else:
            pytest.fail(f"{where}: a code block in {language or 'no language'!r}; the test cannot run it")


def test_pages_have_code_blocks_and_link_to_existing_files():
    for page in PAGES:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)\)", text):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
    assert len(code_blocks(ROOT / "README.md")) >= 5


def test_configuration_reference_is_generated_from_the_code():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_config_reference.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
