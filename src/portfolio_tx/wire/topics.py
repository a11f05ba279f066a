"""TopicNames: the six topics of CONTRACT §3, and which of them share a partition count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The six topics of CONTRACT §3."""

    fills: str = "portfolio.fills"
    pnl: str = "portfolio.pnl"
    cycles: str = "portfolio.cycles"
    marks: str = "portfolio.marks"
    commits: str = "portfolio.commits"
    deadletter: str = "portfolio.deadletter"

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        """The default names behind ``prefix``: ``t-abc.`` gives ``t-abc.portfolio.fills``."""
        default = cls()
        return cls(*(prefix + name for name in default.all()))

    def all(self) -> tuple[str, ...]:
        """Every topic, in declaration order."""
        return (self.fills, self.pnl, self.cycles, self.marks, self.commits, self.deadletter)

    def copartitioned(self) -> tuple[str, ...]:
        """The topics that must share one partition count."""
        return (self.fills, self.pnl, self.cycles, self.commits)

    def inputs(self) -> tuple[str, ...]:
        """The topics a session's cycle is read from."""
        return (self.fills, self.pnl, self.cycles)
