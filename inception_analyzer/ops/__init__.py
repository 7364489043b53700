"""The op registry: every op kind in one place, each a small object of pure shape arithmetic.

Analyzers and the builder ask the registry; they never switch on op names, and they read an op
through its typed facets (base.py: `category`, `merge_kind`, `geometry`, `constant_factor`),
never through another op's raw arguments; the memory analysis through `forward_memory` and
`backward_memory`, the training FLOPs through `backward_flops`. Adding an op is one class with `@register` in the
module of its family:

    args.py        argument types (the checks that normalise a spec's values)
    base.py        OpKind, the facet types, the registry
    windows.py     sliding-window arithmetic shared by convolution and pooling
    conv.py, linear.py, norm.py, pool.py, pointwise.py, channels.py, spatial.py, merge.py, structural.py:
                   the op kinds

The family modules are imported here in the order their ops are listed (`inception-analyzer ops`).
"""
from __future__ import annotations

from . import conv, linear, norm, pool, pointwise, channels, spatial, merge, structural  # noqa: F401  (each registers its ops)
from .args import MAX_SIZE, REQUIRED, Arg
from .base import (OPS, BackwardMemory, Category, ConvGeometry, Execution, ForwardMemory, MergeKind, Movement, OpKind,
                   RFStep, Shape, Storage, Timing, Unmodelled, WeightRef, get_op, register)

# the merges: written as blocks of branches (`concat: [...]`), or called on the tensors a row reads
MERGE_OPS = tuple(name for name, op in OPS.items() if op.merges)
# ops a spec may not call by name: the input is given
STRUCTURAL_OPS = frozenset({"input"})

__all__ = ["Arg", "BackwardMemory", "Category", "ConvGeometry", "Execution", "ForwardMemory", "MAX_SIZE", "MERGE_OPS",
           "MergeKind", "Movement", "OPS", "OpKind", "REQUIRED", "RFStep", "STRUCTURAL_OPS", "Shape", "Storage",
           "Timing", "Unmodelled", "WeightRef", "get_op", "register"]
