"""torchvision's models of the architectures we have specs for, built with the bench settings, and
the work-around that lets torchvision import where its compiled ops do not load."""
from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Any

import torch
from torch import nn

from ..graph import Graph
from .settings import BenchSettings

# spec name -> (torchvision builder, spec arguments passed on by the same name, fixed arguments)
TORCHVISION_PEERS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "inception_v3": ("inception_v3", ("num_classes", "aux_logits", "dropout"),
                     {"init_weights": False, "transform_input": False}),
    "googlenet": ("googlenet", ("num_classes", "aux_logits", "dropout", "dropout_aux"),
                  {"init_weights": False, "transform_input": False}),
    "vgg16": ("vgg16", ("num_classes", "dropout"), {"init_weights": False}),
    "alexnet": ("alexnet", ("num_classes", "dropout"), {}),
}


@functools.cache
def import_torchvision() -> tuple[Any, Any]:
    """(torchvision module or None, what keeps its work-around alive).

    torchvision 0.28 has no CPU build for torch 2.13: its compiled ops do not load and its import
    fails on the missing `torchvision::nms` schema. Defining the nms and qnms schemas first is
    enough for the model builders, which use no detection ops (DEVELOPERS.md)."""
    try:
        return importlib.import_module("torchvision"), None
    except Exception:  # noqa: BLE001 - any import failure: try the schema work-around once
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):  # already defined
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    try:
        return importlib.import_module("torchvision"), library
    except Exception:  # noqa: BLE001 - torchvision unusable here: no peer, said so in the output
        return None, library


def torchvision_version() -> str | None:
    module, _ = import_torchvision()
    return None if module is None else module.__version__


def has_peer(graph: Graph) -> bool:
    return graph.name in TORCHVISION_PEERS and import_torchvision()[0] is not None


def build_torchvision(graph: Graph, settings: BenchSettings) -> nn.Module:
    module, _ = import_torchvision()
    builder, passed, fixed = TORCHVISION_PEERS[graph.name]
    arguments = {name: graph.arguments[name] for name in passed if name in graph.arguments}
    with settings.device:
        model = getattr(module.models, builder)(weights=None, **arguments, **fixed)
    model = model.to(dtype=settings.parameter_dtype)
    return model.to(memory_format=torch.channels_last) if settings.channels_last else model
