"""Design-space sweeps: many variants of one spec (argument grids, random samples of them, width
multipliers, input sizes), each analysed as `analyze` would, filtered by budgets, ranked, and the
Pareto front of cost against size marked.

    space.py     the design space and its variants (no analysis)
    evaluate.py  one variant -> its figures, or the located reason it is invalid
    budgets.py   `--max KEY=VALUE` limits
    pareto.py    the front, and the ranking
    engines.py   where the variants run: this process, a local process pool, a Dask cluster

Torch-free: a variant is an analysis, never a built model.
"""
