"""The ranking of a sweep's survivors and their Pareto front: cost (predicted latency where a
profile gives one, else MACs) against size (params), both to be small."""
from __future__ import annotations

from .evaluate import VariantResult


def objectives(result: VariantResult, by_latency: bool) -> tuple[float, float]:
    return (result.latency_seconds if by_latency else result.macs, result.params)


def pareto_front(results: list[VariantResult], by_latency: bool) -> set[int]:
    """The indices of the results no other result beats on both objectives (equal points are all
    on the front). One sort: along rising cost, a point is on the front when its size is below
    every size seen before it."""
    ordered = sorted(results, key=lambda r: objectives(r, by_latency))
    front, smallest, cost_of_smallest = set(), float("inf"), None
    for result in ordered:
        cost, size = objectives(result, by_latency)
        if size < smallest or (size == smallest and cost == cost_of_smallest):
            front.add(result.index)
            smallest, cost_of_smallest = size, cost
    return front


def ranked(results: list[VariantResult], by_latency: bool) -> list[VariantResult]:
    """Cheapest first, then smallest, then in the sweep's order."""
    return sorted(results, key=lambda r: (*objectives(r, by_latency), r.index))
