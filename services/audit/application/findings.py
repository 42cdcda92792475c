"""What a verification of the trail found: its counts, the first divergence and the problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_PROBLEMS = 50


@dataclass
class Verification:
    ok: bool = True
    entries: int = 0
    checkpoints: int = 0
    checkpoints_on_log: int = 0
    against_log: bool = False
    divergence: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    covered: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)
    forgeries: list[dict[str, Any]] = field(default_factory=list)
    """Records of the log whose writer's proof fails, kept apart from the trail: each named."""
    untrusted_checkpoints: list[str] = field(default_factory=list)
    """Records that claim to be checkpoints of the chain but are not evidence, and why."""
    tree: dict[str, Any] = field(default_factory=dict)
    """The Merkle tree the walk recomputed: its size and root."""

    def fail(self, sequence: int | None, problem: str, **details: Any) -> None:
        found = {"sequence": sequence, "problem": problem, **details}
        if self.ok:
            self.ok, self.divergence = False, found
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(found)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
