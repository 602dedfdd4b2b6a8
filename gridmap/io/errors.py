"""Errors raised when a file cannot be imported as it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# rows shown for each kind of problem; the rest are counted
SHOWN_PER_KIND = 5

Say = Callable[[str], str]  # English text → the text to show (the catalogue's translate)


def _as_is(text: str) -> str:
    return text


@dataclass
class Problem:
    """One feature that cannot be imported, and why. ``kind`` groups problems of one sort
    (``"not a whole number"``, ``"invalid geometry"`` …) in the report; without it the
    message is the group."""

    row: int | None
    key: str | None
    message: str
    kind: str | None = None

    def __str__(self) -> str:
        return self.render()

    def render(self, say: Say = _as_is) -> str:
        """The problem as a line, each English part (where, what) passed through *say*."""
        where = "" if self.row is None else say(f"feature {self.row}")
        if self.key:
            where += f" ({self.key})"
        return f"{where}: {say(self.message)}" if where else say(self.message)


def group_problems(problems: list[Problem]) -> dict[str, list[Problem]]:
    """Problems by kind, in the order each kind first occurs."""
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.kind or p.message, []).append(p)
    return groups


@dataclass
class ImportRejected(Exception):
    """The file was refused; nothing was written. ``problems`` name each bad feature.

    The message shows every kind of problem at once — how many rows have it and the first
    few — so that a file is fixed in one pass, not twenty rows at a time."""

    source: str
    summary: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return self.render()

    def render(self, say: Say = _as_is) -> str:
        """The refusal as lines, each English part (the summary, a kind of problem, each
        problem) passed through *say*: the CLI gives the catalogue's ``translate``."""
        lines = [say(f"{self.source}: {self.summary}")]
        groups = group_problems(self.problems)
        if len(groups) == 1 and len(self.problems) <= SHOWN_PER_KIND:
            lines += [f"  - {p.render(say)}" for p in self.problems]
            return "\n".join(lines)
        for kind, rows in groups.items():
            lines.append(f"  {say(kind)}: {say(f'{len(rows)} row(s)')}")
            lines += [f"    - {p.render(say)}" for p in rows[:SHOWN_PER_KIND]]
            if len(rows) > SHOWN_PER_KIND:
                lines.append("    " + say(f"… and {len(rows) - SHOWN_PER_KIND} more"))
        return "\n".join(lines)
