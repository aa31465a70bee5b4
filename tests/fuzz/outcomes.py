"""What became of each case, and the report: counts, and the distinct failures with one example each.

Outcomes: ``clean`` (exit 2 with one ``nnip CMD: error: ...`` line, or ``nnip info``'s exit 1
listing the problems), ``passed`` (exit 0 on an input that may be accepted), and the failures:
``accepted`` (exit 0 on an input that must be refused), ``traceback`` (an exception escaped
``main``, or an exit status other than 0, 2 or 130), ``messy`` (exit 2 without exactly one
``nnip `` line on stderr), ``signal`` (the worker process died) and ``hang`` (past the timeout).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cases import Case

__all__ = ["Result", "classify", "FAILURES", "OUTCOMES", "summary"]

OUTCOMES = ("clean", "passed", "accepted", "traceback", "messy", "signal", "hang")
FAILURES = ("signal", "hang", "traceback", "messy", "accepted")  # the worst first


@dataclass
class Result:
    """The outcome of a case, with what tells the failure apart."""

    case: Case
    outcome: str
    rc: int | None
    last_line: str  # stderr's last line; all of it (messy); 'Type: message' (traceback); the fault handler's line
    detail: str = ""  # exception type, signal name
    where: str = ""  # innermost nnip frame of the failure
    seconds: float = 0.0

    def kind(self) -> tuple[str, ...]:
        """What identifies one defect: where and how it failed, or (accepted, messy) which kind of mutation."""
        if self.outcome in ("accepted", "messy"):
            return self.outcome, self.case.family, ".".join(self.case.mutation.split(".")[:2])
        return self.outcome, self.case.family, self.detail, self.where


def classify(case: Case, answer: dict) -> Result:
    """The outcome of a case from the worker's answer (see :func:`worker.run_case` and :class:`worker.Worker`)."""
    stderr = answer.get("stderr", "")
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    rc, seconds = answer.get("rc"), answer.get("seconds", 0.0)
    if "signal" in answer or "hang" in answer:
        outcome = "signal" if "signal" in answer else "hang"
        return Result(case, outcome, rc, answer.get("last_line", last), answer.get("signal", "timeout"),
                      answer.get("where", ""), seconds)
    if answer.get("exception"):
        error = answer["exception"]
        return Result(case, "traceback", rc, f"{error['type']}: {error['message']}", error["type"], error["where"],
                      seconds)
    if rc == 0:
        return Result(case, "accepted" if case.refuse else "passed", rc, last, seconds=seconds)
    if rc == 2:
        if len(lines) == 1 and lines[0].startswith("nnip "):
            return Result(case, "clean", rc, last, seconds=seconds)
        return Result(case, "messy", rc, " / ".join(line.strip() for line in lines)[-400:], seconds=seconds)
    if rc == 130 or (rc == 1 and case.argv[0] == "info"):  # info: exit 1 lists the problems of the file
        return Result(case, "clean", rc, last, seconds=seconds)
    return Result(case, "traceback", rc, last, f"exit status {rc}", "", seconds)


def _example(result: Result, regenerate: str) -> str:
    case = result.case
    return (f"    e.g. case {case.index} ({case.mutation}: {case.detail})\n"
            f"      {case.command()}\n"
            f"      stderr: {result.last_line[:300] or f'(nothing; exit {result.rc})'}\n"
            f"      regenerate: {regenerate.format(seed=case.seed, index=case.index)}")


def summary(results: list[Result], seconds: float, regenerate: str, max_kinds: int = 60) -> str:
    """Counts per outcome and family, then each distinct failure with its count, mutations and first example."""
    counts = Counter(r.outcome for r in results)
    families = Counter(r.case.family for r in results)
    lines = [f"{len(results)} cases in {seconds:.0f} s ("
             + ", ".join(f"{family} {n}" for family, n in sorted(families.items())) + "): "
             + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)]
    kinds: dict[tuple, list[Result]] = {}
    for result in results:
        if result.outcome in FAILURES:
            kinds.setdefault(result.kind(), []).append(result)
    if kinds:
        lines.append(f"{len(kinds)} distinct failures:")
    order = sorted(kinds.items(), key=lambda item: (FAILURES.index(item[0][0]), -len(item[1])))
    for k, (kind, group) in enumerate(order):
        if k == max_kinds:
            lines.append(f"  ... and {len(kinds) - max_kinds} more")
            break
        mutations = Counter(r.case.mutation for r in group)
        shown = ", ".join(f"{m} x{n}" for m, n in mutations.most_common(6))
        more = f", +{len(mutations) - 6} more" if len(mutations) > 6 else ""
        lines.append(f"  {len(group)} x {' | '.join(part for part in kind if part)}\n    mutations: {shown}{more}")
        lines.append(_example(group[0], regenerate))
    return "\n".join(lines)
