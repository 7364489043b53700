"""The training step `bench --mode train` times: the recipe of "Rethinking the Inception
Architecture", its optimizer and loss, and one full step."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..analysis.training import optimizer_named
from .limits import BenchError


@dataclass(frozen=True)
class TrainRecipe:
    """The training step of "Rethinking the Inception Architecture" (Szegedy et al. 2016, §8):
    RMSProp with decay 0.9 and epsilon 1.0, learning rate 0.045, gradient clipping at 2.0, label
    smoothing 0.1. The paper names no momentum; TF-Slim's train_image_classifier.py defaults to
    0.9. Auxiliary logits add their loss at weight 0.4, as TF-Slim's train_image_classifier.py
    does (label smoothing included); torchvision's reference train.py has no auxiliary loss at
    all (its inception_v3 weights were ported from TensorFlow, not trained with it). torch's
    RMSprop adds epsilon outside the square root, TensorFlow's inside: same cost, other numbers.
    """

    learning_rate: float = 0.045
    rmsprop_decay: float = 0.9          # torch's `alpha`
    rmsprop_epsilon: float = 1.0
    momentum: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 2.0
    aux_weight: float = 0.4

    @property
    def optimizer_states(self) -> int:
        """Tensors RMSprop keeps per parameter: the square average, and the momentum buffer if any."""
        return 1 + (self.momentum > 0)

    @property
    def optimizer(self) -> str:
        """The optimizer's name in the memory analysis (analysis.training.OPTIMIZERS)."""
        return optimizer_named("rmsprop", self.momentum).name


def make_optimizer(parameters, recipe: TrainRecipe) -> torch.optim.RMSprop:
    return torch.optim.RMSprop(parameters, lr=recipe.learning_rate, alpha=recipe.rmsprop_decay,
                               eps=recipe.rmsprop_epsilon, momentum=recipe.momentum)


def make_criterion(recipe: TrainRecipe) -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def split_outputs(outputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, aux logits) of a model's training output: a tensor, our SpecOutputs or
    torchvision's InceptionOutputs / GoogLeNetOutputs (main logits first, aux heads after)."""
    if isinstance(outputs, torch.Tensor):
        return outputs, []
    logits, *rest = outputs
    aux: list[torch.Tensor] = []
    for item in rest:
        if isinstance(item, torch.Tensor):
            aux.append(item)
        elif item is not None:          # SpecOutputs keeps several heads as a tuple
            aux.extend(split_outputs((None, *item))[1])
    return logits, aux


def training_loss(outputs, labels: torch.Tensor, criterion: nn.Module, recipe: TrainRecipe) -> torch.Tensor:
    logits, aux = split_outputs(outputs)
    loss = criterion(logits, labels)
    for head in aux:
        if head.shape != logits.shape:
            raise BenchError(f"an auxiliary head gives {list(head.shape)} where the classifier gives "
                             f"{list(logits.shape)}: a training step needs class logits from every head "
                             "(or --set aux_logits=false)")
        loss = loss + recipe.aux_weight * criterion(head, labels)
    return loss


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
               criterion: nn.Module, recipe: TrainRecipe, scaler: torch.amp.GradScaler,
               autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """One full step; returns the loss without reading it back (that would synchronise)."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        loss = training_loss(model(images), labels, criterion, recipe)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # clip the true gradients, not fp16's scaled ones
    nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()
