"""What a scenario reports: figures for the table, and failures."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """The figures a scenario measured (``what -> value``) and what went wrong."""

    name: str
    figures: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: Why the figures may be disturbed (another process used the CPU, ...).
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figure(self, what: str, value: object) -> None:
        self.figures[what] = value if isinstance(value, str) else f"{value:,}"

    def fail(self, problem: str) -> None:
        self.failures.append(problem)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.failures.append(problem)

    @property
    def ok(self) -> bool:
        return not self.failures


def table(outcomes: list[Outcome]) -> str:
    """The outcomes as a plain-text table: scenario, result, time, then one row per figure."""
    rows: list[tuple[str, str, str]] = []
    for o in outcomes:
        verdict = "ok" if o.ok else f"FAILED ({len(o.failures)})"
        rows.append((o.name, f"{verdict}, {o.seconds:.1f} s", ""))
        rows.extend(("", what, value) for what, value in o.figures.items())
        rows.extend(("", "note", note) for note in o.notes)
        rows.extend(("", "failure", f) for f in o.failures[:10])
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows)
