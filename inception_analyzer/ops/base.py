"""The op kind: the base class every op of the registry derives from, the typed facets that
analyzers read instead of an op's raw arguments, and the registry itself.

An op kind knows, from its resolved arguments and its input shapes alone:
  - its signature (positional order, defaults, argument types),
  - its output shape (raising ShapeError when the input cannot go through it),
  - its learnable parameters and its buffers (elements, as torch counts them),
  - its multiply-accumulates (conv and linear only; see docs/conventions.md),
  - its other FLOPs (pooling, normalisation, activations, merges) with the rule stated,
  - what fvcore's FlopCountAnalysis counts for it (so a total can be cross-checked),
  - the FLOPs of its backward pass, to its inputs and to its weights (`backward_flops`),
  - what its forward and backward calls hold in memory on an `Execution` (batch, dtype, training
    or not, cpu or cuda): a new output or its input's storage, what autograd keeps for the
    backward, the workspace, the gradients it makes (`forward_memory`, `backward_memory`), and
    whether it can run in place (`in_place_capable`),
  - its receptive-field step (kernel, stride, padding, dilation per axis),
  - its facets: what kind of layer it is (`category`), how it joins branches (`merge_kind`),
    its convolution geometry (`geometry`), the constant it multiplies by (`constant_factor`),
  - how to make its torch module (torch is imported only inside `make_module` and `combine`),
  - which torch modules and calls it stands for when a model is imported with torch.fx.

Shapes exclude the batch: (C, H, W) for feature maps, (N,) for vectors.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from ..errors import SpecError, did_you_mean
from .args import REQUIRED, Arg

Shape = tuple  # (C, H, W) or (N,)

# prefix of the torch.nn.functional names in `torch_calls`
F = "torch.nn.functional."


class Category(enum.Enum):
    """What an op is, for analyzers that reason about kinds of layers (the review, the builder)."""

    CONV = "conv"
    LINEAR = "linear"
    POOL = "pool"
    BATCH_NORM = "batch_norm"
    NORMALIZATION = "normalization"   # other normalisations (local response normalisation)
    ACTIVATION = "activation"
    MERGE = "merge"
    RESHAPE = "reshape"
    OTHER = "other"


class MergeKind(enum.Enum):
    """How a merge joins its branches."""

    CONCAT = "concat"   # side by side along channels (the Inception filter concat)
    ADD = "add"         # element-wise sum (residual connections)
    GATE = "gate"       # element-wise product, a [C, 1, 1] branch broadcast over the grid (squeeze-and-excitation)


@dataclass(frozen=True)
class RFStep:
    """A layer's receptive-field step per axis (h, w): r += (k-1)*d*j; j *= s."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]  # leading (top, left) padding
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution-like layer's geometry with every argument resolved: 'same' and 'valid'
    padding turned into numbers, and an op kind without dilation or groups gets their neutral
    values by default, so a reader never looks into an op's own arguments."""

    kernel: tuple[int, int]      # (h, w)
    stride: tuple[int, int]
    padding: tuple[int, int]     # leading (top, left) padding, input pixels
    in_channels: int
    out_channels: int
    bias: bool
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def grouped(self) -> bool:
        return self.groups > 1

    @property
    def depthwise(self) -> bool:
        """One group per input channel, each making one or more output channels (MobileNet)."""
        return self.groups == self.in_channels > 1 and self.out_channels % self.in_channels == 0

    @property
    def pointwise(self) -> bool:
        return self.kernel == (1, 1)

    @property
    def spatial(self) -> bool:
        """It aggregates over neighbouring positions (a kernel wider than one pixel)."""
        return self.kernel[0] * self.kernel[1] > 1

    @property
    def square(self) -> bool:
        return self.kernel[0] == self.kernel[1]


@dataclass(frozen=True)
class WeightRef:
    """A weight (parameter or buffer) a traced call reads, as the importer hands it to an op's
    `from_torch_call`: the tensor's qualified name and shape in the model, whether it is learnable,
    and the shape of the value the call sees (`gamma.reshape(1, -1, 1, 1)` reads gamma reshaped)."""

    name: str
    shape: tuple
    learnable: bool = True
    value_shape: tuple | None = None
    computed: bool = False   # made from the weight by ops in the forward (a reshape, NFNet's standardisation)

    @property
    def seen_shape(self) -> tuple:
        return self.shape if self.value_shape is None else self.value_shape


@dataclass(frozen=True)
class Movement:
    """What a chain of pure data movement (view, reshape, permute, transpose, ...) did to one
    tensor of the IR, worked out by the importer on an index tensor:
      "flatten"   the elements in their logical order as a vector,
      "channels"  a permutation of whole channels; `order[i]` is the input channel of output channel i.
    Op kinds that express such a movement say so in `from_movement`."""

    kind: str
    order: tuple = ()


# Execution.backend
CPU = "cpu"      # ATen's CPU kernels and oneDNN (mkldnn), as eager PyTorch runs them on a CPU
CUDA = "cuda"    # ATen's CUDA kernels and cuDNN
BACKENDS = (CPU, CUDA)


@dataclass(frozen=True)
class Execution:
    """How a pass runs, as far as an op's memory depends on it: the memory facets' one argument
    besides the op's own arguments and shapes. Sizes are for the whole batch, in bytes."""

    batch: int
    element_bytes: int            # the activations' dtype (4: fp32; 2: bf16, fp16)
    training: bool                # a training step: autograd records and keeps what the backward needs
    backend: str = CPU
    autocast: bool = False        # training in a 16-bit dtype over fp32 master weights (torch.autocast)
    # oneDNN's channel block on this CPU: its blocked layouts round channels up to it (16 with
    # AVX-512, 8 with AVX2 only)
    channel_block: int = 16
    master_bytes: int = 4         # the weights' and gradients' dtype in training
    onednn: bool = True           # torch was built with oneDNN (mkldnn): convolutions go to it

    def bytes_of(self, shape: Shape, element_bytes: int | None = None) -> int:
        """Bytes of one tensor of this per-image shape for the whole batch."""
        n = self.batch * (self.element_bytes if element_bytes is None else element_bytes)
        for d in shape:
            n *= d
        return n


class Storage(enum.Enum):
    """Where an op's result lives."""

    NEW = "new"      # a tensor of its own
    SHARED = "shared"  # its input's storage: a view, the input itself, or written in place


@dataclass(frozen=True)
class ForwardMemory:
    """What an op's forward call holds, beyond what is live before it (Execution's sizes).

    In training, autograd keeps some tensors alive until the op's backward runs: references to
    its inputs or its output (no new bytes: they keep an existing tensor alive longer) and tensors
    it makes only for the backward (max pooling's indices, dropout's mask, batch norm's batch
    statistics: `saved_bytes`). `workspace_bytes` is held only while the op runs: the peak of its
    temporaries above its output and saved tensors (oneDNN's reordered copies, im2col columns)."""

    output: Storage = Storage.NEW
    saves_inputs: tuple[int, ...] = ()
    saves_output: bool = False
    saved_bytes: int = 0
    workspace_bytes: int = 0


@dataclass(frozen=True)
class Timing:
    """One series of microbenchmarks `calibrate` times an op kind with (bench/calibrate.py): its
    arguments, and how a feature map [C, H, W] of each size, from a few elements to tens of
    millions, becomes the case's inputs. Its smallest case (one channel, 1 x 1, or the least the
    op kind takes) times the entry's overhead."""

    args: dict = field(default_factory=dict)
    maps: int = 1              # the map read this many times (a merge of that many branches)
    gate: bool = False         # the map and a [C, 1, 1] gate (a squeeze-and-excitation product)
    vector: bool = False       # the map flattened into a vector (an op kind of vectors)
    window: int = 1            # the map's least side (a pool's window; the smallest case twice it)
    channels: int = 1          # the fewest channels the op kind takes (a channel shuffle's groups)
    growth: int = 1            # its output holds this many times its input: the series stops that much smaller
    sizes: bool = True         # False: its overhead alone (a view or no-op, which costs nothing more)
    quick: bool = False        # in the quick grid too (`calibrate --quick`: tests, a first look)


@dataclass(frozen=True)
class Alloc:
    """A block an op's call allocates for itself, in bytes for the whole batch."""

    bytes: int


@dataclass(frozen=True)
class Free:
    """The call frees its `index`-th Alloc (counted from 0 in the order it allocated them)."""

    index: int


OUTPUT = "output"   # where among a call's own blocks its output is allocated
CallStep = Alloc | Free | str


@dataclass(frozen=True)
class BackwardMemory:
    """What an op's backward call makes: a gradient for each input that needs one (NEW), or the
    output's gradient passed on as it is or as views of it (SHARED: add, concat, flatten); the
    weights' gradients (`OpKind.params`, in the master dtype) are the analyzer's; `workspace_bytes`
    is the peak of its temporaries above the gradients it returns."""

    grad_inputs: Storage = Storage.NEW
    workspace_bytes: int = 0


class Unmodelled(Exception):
    """A torch module or call whose settings no op kind expresses (the importer lists it)."""


def refuse_unless(condition: bool, reason: str) -> None:
    if not condition:
        raise Unmodelled(reason)


class OpKind:
    """Base of every op kind. Subclasses override the rules that differ from 'no cost'."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    args: ClassVar[tuple[Arg, ...]] = ()
    category: ClassVar[Category] = Category.OTHER
    merge_kind: ClassVar[MergeKind | None] = None  # set on the ops that take several inputs
    weighted: ClassVar[bool] = False        # counts as a layer of depth (conv, linear)
    builds_module: ClassVar[bool] = True    # merges are done by the enclosing container
    # its torch form is a bare learnable tensor on the enclosing module (a layer scale's gamma, named
    # as the model names it), applied in the forward pass by `apply`, not a module of its own
    builds_parameter: ClassVar[bool] = False
    # how many tensors it reads: one for most ops; merges two or more (a concatenation also one,
    # as torch.cat([x]) is); None = no upper bound
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    modelled: ClassVar[bool] = True         # False: its MACs and FLOPs are unknown (not zero)
    # its torch op returns new storage that autograd does not keep for the backward pass, so the
    # one activation that reads it may overwrite it (the builder then builds that activation with
    # inplace=True, as torchvision does; measured on the CPU, an out-of-place ReLU costs twice as much)
    fresh_output: ClassVar[bool] = False
    # its output is its input tensor itself at inference (an identity, dropout): an activation after
    # it overwrites the tensor before it, so graph.runs_in_place asks that tensor's producer (timm's
    # BatchNormAct2d runs bn, an identity in place of dropout, then ReLU(inplace=True))
    passes_input: ClassVar[bool] = False
    # its output is a view of its input at inference (a slice or chunk of the channels, a flatten):
    # nothing is computed, copied or allocated. An op kind that computes nothing and has neither
    # this nor `passes_input` copies its input (a channel shuffle, a padding, an upsampling), as
    # many elements as it reads or not (analysis/roofline.shapes_move_data)
    views_input: ClassVar[bool] = False
    # it can overwrite its input (torch's inplace=True); whether it does is the graph's decision
    # (graph.runs_in_place: only where nothing else needs the input), the builder's and the memory
    # analysis's alike
    in_place_capable: ClassVar[bool] = False
    # the series `calibrate` times it with (each again in place where it can run in place); the
    # default: an element-wise op on a feature map. () for what no curve prices: the input, an
    # opaque import, and the convolution and linear classes, which have grids of their own
    timings: ClassVar[tuple[Timing, ...]] = (Timing(),)
    other_flops_rule: ClassVar[str] = "none"
    # torch.fx import (importer.py): the torch.nn classes this op stands for, and the functions
    # ("torch.nn.functional.relu") and tensor methods (".relu") with the names of their arguments
    # after the input tensor(s), so a call's positional arguments can be named
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_calls: ClassVar[dict[str, tuple[str, ...]]] = {}
    # calls returning several tensors (x.chunk(2, dim=1)), of which this op is one piece: the
    # importer adds the piece's position as `index` to the call's named arguments
    torch_piece_calls: ClassVar[dict[str, tuple[str, ...]]] = {}
    # arguments of those calls whose values its `from_torch_call` reads off the traced shapes
    # instead, so one computed at run time (F.interpolate(x, size=y.shape[-2:])) is fine
    traced_arguments: ClassVar[tuple[str, ...]] = ()
    # how the op's torch form reads a tensor laid out in another order (x.permute(0, 2, 3, 1)):
    # elementwise ops do not care; ops that read the last axis (nn.Linear, nn.LayerNorm) act on
    # channels when the last axis holds them. Every other op needs the model's own (C, H, W) order.
    elementwise: ClassVar[bool] = False
    reads_last_axis: ClassVar[bool] = False

    @property
    def merges(self) -> bool:
        """Takes several inputs (concat, add, mul)."""
        return self.merge_kind is not None

    # -- arguments
    def bind(self, positional: list, keywords: dict) -> dict:
        """Bind call arguments to this op's signature, check and normalise them."""
        if len(positional) > len(self.args):
            raise SpecError(f"{self.name} takes at most {len(self.args)} positional arguments "
                            f"({', '.join(a.name for a in self.args) or 'none'}), got {len(positional)}")
        names = [a.name for a in self.args]
        bound = dict(zip(names, positional))
        for key, value in keywords.items():
            if key not in names:
                hint = did_you_mean(key, names)
                raise SpecError(f"{self.name} has no argument '{key}'"
                                + (f"; {hint}" if hint else f" (it takes: {', '.join(names) or 'none'})"))
            if key in bound:
                raise SpecError(f"{self.name} got '{key}' twice")
            bound[key] = value
        resolved = {}
        for arg in self.args:
            if arg.name in bound:
                resolved[arg.name] = arg.check(arg.name, bound[arg.name])
            elif arg.default is REQUIRED:
                raise SpecError(f"{self.name} needs '{arg.name}'")
            else:
                resolved[arg.name] = arg.check(arg.name, arg.default)  # normalised like given values
        return resolved

    # -- rules (defaults: shape-preserving, free)
    def output_shape(self, a: dict, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def params(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def buffers(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def macs(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def other_flops(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def fvcore_flops(self, a: dict, inputs: list[Shape], out: Shape, training: bool = False) -> int:
        """What fvcore 0.1.5's default FlopCountAnalysis handles count for this op."""
        return 0

    def rf_step(self, a: dict, inputs: list[Shape], grid: tuple[int, int]) -> RFStep | None:
        """How the op moves the receptive field; None for pointwise ops and merges.

        `grid` is the spatial extent of the input's units: its H, W for feature maps, and for a
        vector the grid it was flattened from (so a linear layer can see all of it)."""
        return None

    def backward_flops(self, a: dict, inputs: list[Shape], out: Shape) -> tuple[int, int]:
        """FLOPs of the backward pass per image: (gradient with respect to the inputs, gradient with
        respect to the weights), docs/conventions.md. Default: the input gradient does the forward's
        other FLOPs once more, on the gradient; no weights."""
        return self.other_flops(a, inputs, out), 0

    def flop_counter_flops(self, a: dict, inputs: list[Shape], out: Shape, input_grad: bool = True) -> int:
        """What torch's FlopCounterMode counts for this op in a training step, forward and backward,
        per image (so a total can be cross-checked, as `fvcore_flops` for fvcore). It has rules for
        convolutions and matrix products only: 0 for every other op."""
        return 0

    # -- memory (analysis/memory.py walks the graph with these)
    # autograd keeps its output, not its input, for the backward (relu, sigmoid, softmax); so an
    # in-place run keeps what it would keep anyway, and needs no copy of the input
    saves_result: ClassVar[bool] = False
    # torch.autocast runs it in the 16-bit dtype (conv, linear): an fp32 input (the image) is
    # copied to 16 bits first, and the copy is what it keeps for the backward
    autocasts: ClassVar[bool] = False

    def forward_memory(self, a: dict, inputs: list[Shape], out: Shape, run: Execution,
                       in_place: bool = False) -> ForwardMemory:
        """What the forward call holds (ForwardMemory). `in_place`: the builder runs this op in
        place on its input (graph.runs_in_place). Default: a new output, and in training the
        inputs kept for the backward (or the output, `saves_result`); an in-place op whose backward
        needs its input keeps a copy of it (autograd saves the original before it is overwritten)."""
        if in_place:
            copy = 0 if self.saves_result else run.bytes_of(inputs[0])
            return ForwardMemory(Storage.SHARED, saves_output=run.training and self.saves_result,
                                 saved_bytes=copy if run.training else 0)
        if not run.training:
            return ForwardMemory()
        if self.saves_result:
            return ForwardMemory(saves_output=True)
        return ForwardMemory(saves_inputs=tuple(range(len(inputs))))

    def backward_memory(self, a: dict, inputs: list[Shape], out: Shape, run: Execution,
                        input_grads: tuple[bool, ...]) -> BackwardMemory:
        """What the backward call makes (BackwardMemory); `input_grads` says which inputs need a
        gradient (the image does not). Default: a new gradient per input, no workspace."""
        return BackwardMemory()

    # -- transformations (transform.py)
    def scaled_args(self, a: dict, old_inputs: list[Shape], new_inputs: list[Shape],
                    width: Callable[[int], int]) -> dict:
        """The arguments under a width multiplier: `width` maps a channel count of the original
        network to its scaled one, and the inputs have already been scaled (`old_inputs` were the
        shapes before). Default: no argument holds a channel count, so the op follows its inputs."""
        return a

    # -- facets
    def geometry(self, a: dict, inputs: list[Shape], out: Shape) -> ConvGeometry | None:
        """The convolution geometry of a convolution-like op; None for every other op."""
        return None

    def call_blocks(self, a: dict, inputs: list[Shape], out: Shape, run: Execution) -> tuple[CallStep, ...]:
        """The blocks its forward call allocates and frees itself, in the order it does, and where
        among them it allocates its output (OUTPUT); blocks it still holds are freed, last first,
        as it returns. The allocator's simulation replays them (analysis/allocator.py): where a
        block lands decides which pages are fresh. Default: the output, then the workspace
        forward_memory counts (max pooling's int64 indices, which torch's CPU kernel makes even
        where nobody asks for them), freed as it returns."""
        workspace = self.forward_memory(a, inputs, out, run).workspace_bytes
        return (OUTPUT, Alloc(workspace)) if workspace else (OUTPUT,)

    def staged_input(self, a: dict, inputs: list[Shape]) -> Shape | None:
        """The shape of a copy of its input the call makes before it computes (a convolution
        padded more on one side pads a copy first), or None. The memory analysis, the allocator's
        simulation and the latency prediction count it."""
        return None

    def zero_border(self, a: dict) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The zeros it puts around the grid, ((top, bottom), (left, right)), if that is all it does."""
        return None

    def with_border(self, a: dict, border: tuple[tuple[int, int], tuple[int, int]]) -> dict | None:
        """Its arguments when it also pads its input with `border` of zeros first, if it can say so
        (a convolution's padding); None where it cannot."""
        return None

    def constant_factor(self, a: dict) -> float | None:
        """The constant an op multiplies its input by (a residual branch's scaling), if it is one."""
        return None

    def arity_text(self) -> str:
        if self.max_inputs == self.min_inputs:
            return f"{self.min_inputs} tensor{'s' if self.min_inputs != 1 else ''}"
        return f"{self.min_inputs} or more tensors" if self.max_inputs is None else \
            f"{self.min_inputs} to {self.max_inputs} tensors"

    # -- torch
    def make_module(self, a: dict, inputs: list[Shape], out: Shape):
        raise NotImplementedError(f"{self.name} has no torch module")

    def combine(self, tensors: list):
        """For merges: the torch operation joining the branches' tensors."""
        raise NotImplementedError(f"{self.name} does not merge branches")

    def apply(self, parameter, tensor):
        """For ops that build a parameter (`builds_parameter`): the forward pass's use of it."""
        raise NotImplementedError(f"{self.name} builds no parameter")

    def kernel_variant(self, a: dict) -> str:
        """Which of the op kind's kernels its arguments pick, where they pick one that costs otherwise
        (upsample's 'bilinear' against 'nearest'): a word of its latency entry's key, so a profile
        prices each apart (analysis/latency.py). '' for an op kind of one kernel."""
        return ""

    def describe(self, a: dict) -> str:
        """A short argument summary for tables: '3x3/2', 'p=0.5'."""
        return ""

    # -- torch.fx import
    def from_torch_module(self, module, in_shapes: list[Shape], out_shape: Shape) -> dict:
        """This op's arguments read off a torch module of one of `torch_modules`; raises
        Unmodelled for settings the op cannot express. Default: attributes named as our args."""
        return {a.name: getattr(module, a.name) for a in self.args if hasattr(module, a.name)}

    def from_torch_call(self, values: dict, in_shapes: list[Shape], out_shape: Shape) -> dict:
        """This op's arguments from a call's named arguments (as `torch_calls` names them), given
        only where the call passed them. Default: those named as our args; 'inplace' is dropped
        where the op has no such argument (it changes memory use, not the result)."""
        names = {a.name for a in self.args}
        unknown = sorted(set(values) - names - {"inplace"})
        if unknown:
            raise Unmodelled(f"{self.name} cannot express the argument(s) {', '.join(unknown)}")
        return {k: v for k, v in values.items() if k in names}

    def from_movement(self, movement: Movement, in_shape: Shape, out_shape: Shape) -> dict | None:
        """This op's arguments when it expresses a movement of data the importer found (a flatten
        written as x.view(n, -1), a channel shuffle written as view/transpose/view); else None."""
        return None


OPS: dict[str, OpKind] = {}


def register(cls: type[OpKind]) -> type[OpKind]:
    """Class decorator: put one instance of an op kind into the registry under its name."""
    if cls.name in OPS:
        raise ValueError(f"op '{cls.name}' registered twice")
    OPS[cls.name] = cls()
    return cls


def get_op(name: str) -> OpKind | None:
    return OPS.get(name)
