"""What one timed iteration runs: our model built from the graph, its inputs, and the step (a
forward pass, or a training step of the recipe), compiled when asked."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..build import build_model
from ..graph import Graph
from .recipe import make_criterion, make_optimizer, train_step
from .settings import BenchSettings


def build_ours(graph: Graph, settings: BenchSettings) -> nn.Module:
    return build_model(graph, device=settings.device, dtype=settings.parameter_dtype,
                       channels_last=settings.channels_last)


def make_inputs(graph: Graph, batch: int, settings: BenchSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of one batch, the same for every model: drawn from a fixed seed."""
    generator = torch.Generator(device=settings.device).manual_seed(0)
    images = torch.randn(batch, *graph.input_shape, device=settings.device, dtype=settings.parameter_dtype,
                         generator=generator)
    if settings.channels_last:
        images = images.to(memory_format=torch.channels_last)
    classes = graph.node(graph.output).out_shape[0]
    labels = torch.randint(0, classes, (batch,), device=settings.device, generator=generator)
    return images, labels


@dataclass
class Step:
    """One timed iteration (calling it runs it), with what it holds between calls."""

    run: Callable[[], Any]
    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    optimizer: torch.optim.Optimizer | None = None

    def __call__(self) -> Any:
        return self.run()

    def resident(self) -> list[torch.Tensor]:
        """The tensors that live across steps: weights, buffers, gradients, optimizer state, inputs."""
        state = [value for per_parameter in (self.optimizer.state.values() if self.optimizer else ())
                 for value in per_parameter.values() if isinstance(value, torch.Tensor)]
        parameters = list(self.model.parameters())
        return [*parameters, *(p.grad for p in parameters), *self.model.buffers(), *state, self.images,
                self.labels]

    def clear_gradients(self) -> None:
        """What the training step does first (zero_grad(set_to_none=True)), done ahead of it."""
        self.model.zero_grad(set_to_none=True)


def make_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: BenchSettings) -> Step:
    # static shapes: a benchmark runs one shape, and without dynamic=False a model class compiled
    # before at another batch size (torchvision's, across rows) would get a dynamic-shape graph
    run_model = torch.compile(model, mode=settings.compile_mode, dynamic=False) if settings.compile else model
    if settings.mode == "inference":
        model.eval()
        return Step(lambda: run_model(images), model, images, labels)
    model.train()
    recipe = settings.recipe
    optimizer = make_optimizer(model.parameters(), recipe)
    criterion = make_criterion(recipe)
    scaler = torch.amp.GradScaler(settings.device.type, enabled=settings.dtype == "fp16")
    return Step(lambda: train_step(run_model, images, labels, optimizer, criterion, recipe, scaler,
                                   settings.autocast_dtype), model, images, labels, optimizer)
