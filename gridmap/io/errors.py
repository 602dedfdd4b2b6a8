"""Errors raised when a file cannot be imported as it is."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One feature that cannot be imported, and why."""

    row: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = "" if self.row is None else f"feature {self.row}"
        if self.key:
            where += f" ({self.key})"
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ImportRejected(Exception):
    """The file was refused; nothing was written. ``problems`` name each bad feature."""

    source: str
    summary: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.summary}"]
        shown = self.problems[:20]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  … and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)
