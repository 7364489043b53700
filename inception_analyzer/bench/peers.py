"""torchvision's models of the architectures we have specs for, built with the bench settings
(torchvision itself comes through torchvision_compat, which imports it where its compiled ops do
not load)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..graph import Graph
from ..torchvision_compat import load_torchvision
from .settings import BenchSettings

# spec name -> (torchvision builder, spec arguments passed on by the same name, fixed arguments)
TORCHVISION_PEERS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "inception_v3": ("inception_v3", ("num_classes", "aux_logits", "dropout"),
                     {"init_weights": False, "transform_input": False}),
    "googlenet": ("googlenet", ("num_classes", "aux_logits", "dropout", "dropout_aux"),
                  {"init_weights": False, "transform_input": False}),
    "vgg16": ("vgg16", ("num_classes", "dropout"), {"init_weights": False}),
    "resnet50": ("resnet50", ("num_classes",), {}),
    "alexnet": ("alexnet", ("num_classes", "dropout"), {}),
}


def torchvision_version() -> str | None:
    module = load_torchvision().module
    return None if module is None else module.__version__


def has_peer(graph: Graph) -> bool:
    """torchvision builds the architecture as written; a width-scaled variant has no peer there."""
    return graph.width is None and graph.name in TORCHVISION_PEERS and load_torchvision().module is not None


def build_torchvision(graph: Graph, settings: BenchSettings) -> nn.Module:
    module = load_torchvision().module
    builder, passed, fixed = TORCHVISION_PEERS[graph.name]
    arguments = {name: graph.arguments[name] for name in passed if name in graph.arguments}
    with settings.device:
        model = getattr(module.models, builder)(weights=None, **arguments, **fixed)
    model = model.to(dtype=settings.parameter_dtype)
    return model.to(memory_format=torch.channels_last) if settings.channels_last else model
