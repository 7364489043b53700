"""A sweep's outcome as a record: every variant's result, which survive the budgets, their ranking
and Pareto front. Built once from the results; the renderer reads it."""
from __future__ import annotations

from dataclasses import dataclass, field

from .budgets import Budget
from .evaluate import VariantResult
from .pareto import pareto_front, ranked
from .space import DesignSpace


@dataclass
class SweepReport:
    model: str
    spec: str
    space: DesignSpace
    budgets: list[Budget]
    results: list[VariantResult]          # every evaluated variant, in the sweep's order
    by_latency: bool = False              # rank by predicted latency (a profile was given), else MACs
    batch: int = 1                        # the batch the latency is predicted for
    valid: list[VariantResult] = field(init=False)
    invalid: list[VariantResult] = field(init=False)
    over_budget: list[VariantResult] = field(init=False)
    ranked: list[VariantResult] = field(init=False)
    front: set[int] = field(init=False)

    def __post_init__(self):
        self.valid = [r for r in self.results if r.ok]
        self.invalid = [r for r in self.results if not r.ok]
        survivors = [r for r in self.valid if not self.exceeded(r)]
        self.over_budget = [r for r in self.valid if self.exceeded(r)]
        self.ranked = ranked(survivors, self.by_latency)
        self.front = pareto_front(survivors, self.by_latency)

    def exceeded(self, result: VariantResult) -> list[str]:
        """The budgets a valid result is over ('macs > 6e+09')."""
        return [f"{b.key} > {b.limit_text()}" for b in self.budgets if not b.allows(result)]

    @property
    def objective(self) -> str:
        return "latency" if self.by_latency else "macs"

    def summary(self) -> str:
        budgets = ", ".join(f"{b.key} <= {b.limit_text()}" for b in self.budgets) or "no budget"
        return (f"{len(self.results):,} of {self.space.size:,} variants evaluated; {len(self.ranked):,} survive "
                f"({budgets}), {len(self.over_budget):,} over budget, {len(self.invalid):,} invalid; ranked by "
                f"{f'predicted latency (batch {self.batch})' if self.by_latency else 'MACs'}, then params")
