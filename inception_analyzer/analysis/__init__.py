"""Pure analyzers: Graph -> records. None of them imports torch."""
from .cost import CostReport, LayerCost, Totals, analyze_cost

__all__ = ["CostReport", "LayerCost", "Totals", "analyze_cost"]
