"""Memory of a run, per layer and at its peak: one batch at inference, or one training step.

A pure function of the graph IR and the run's settings (batch, dtype, mode, backend, optimizer);
no torch. It walks the graph in execution order as eager PyTorch runs the built model and counts
the bytes of every tensor from the moment it is made until the last thing holding it lets go:

- weights (parameters and buffers; in training fp32 master weights), the optimizer's state (fp32,
  the size of the parameters per state tensor), the images (and the labels in training): alive
  throughout;
- forward, in the IR's order (the built model's generated forward runs it so, dropping each tensor
  after its last reader): each op's output (new storage, or its input's: a view, or an activation
  run in place, `graph.runs_in_place`), and what its op kind says it holds (`OpKind.forward_memory`):
  the workspace of the call, and in training what autograd keeps for the backward pass (references
  to inputs or output, which keep those tensors alive, and tensors made for it: max pooling's
  indices, dropout's mask, batch norm's statistics). A training step runs the auxiliary heads;
- the loss (training): each head's log-softmax (B x classes, fp32) is kept for the backward;
- backward, in the reverse order (autograd's CPU engine runs ready nodes latest first, which is
  exactly the reverse of the forward here): each op's output gradient is consumed, the gradients of
  its inputs made (`OpKind.backward_memory`: new tensors, or the output's gradient passed on as it
  is or as views: add, concat, flatten), the weights' gradients made and kept (fp32 `.grad`), the
  call's workspace held while it runs, then what it kept released. Two gradients for one tensor
  (a fork) are summed into the first in place, as autograd does when it holds the only reference,
  else into a new tensor;
- the optimizer step: gradients, weights and state, plus the step's temporaries (training.Optimizer).

The peak is the largest total at any of these moments; `at_peak` says what it is made of. The
gradients are set to None at the start of each step (`zero_grad(set_to_none=True)`), as the
benchmark's recipe does, so they are built up during the backward pass.

Not counted: memory outside the framework's allocator (the CUDA context, cuBLAS's and cuDNN's
handles, the Python objects), cuDNN's algorithm-dependent workspaces (the CUDA backend has no
workspace for convolutions), scratch buffers of oneDNN's kernels (a few tens of KB), and the CPU
allocator's alignment. docs/benchmarks.md compares the peak with the measured allocator peak.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..dtypes import FP32, get_dtype
from ..errors import AnalyzerError, shown
from ..graph import AUX, INPUT, Graph, runs_in_place
from ..ops.base import BACKENDS, CPU, CUDA, Execution, ForwardMemory, Storage
from .training import DEFAULT_OPTIMIZER, OPTIMIZERS, needs_grad

MODES = ("inference", "train")
LABEL_BYTES = 8                 # class indices are int64
LOSS_BYTES = FP32.bytes         # the loss's log-probabilities are fp32 (autocast runs it so)
CUDA_BLOCK = 512                # the CUDA caching allocator rounds every block up to 512 bytes
MAX_BATCH = 2**31               # largest_batch looks no further

# what the memory at the peak is made of (MemoryReport.at_peak)
WEIGHTS = "weights"                         # parameters and buffers
GRADIENTS = "gradients"                     # the weights' gradients (.grad)
OPTIMIZER_STATE = "optimizer state"
INPUTS = "inputs"                           # images and labels
ACTIVATIONS = "activations"                 # outputs of layers, and what autograd keeps for the backward
ACTIVATION_GRADIENTS = "activation gradients"
WORKSPACE = "workspace"                     # temporaries of the op running at the moment
KINDS = (WEIGHTS, GRADIENTS, OPTIMIZER_STATE, INPUTS, ACTIVATIONS, ACTIVATION_GRADIENTS, WORKSPACE)


class MemorySettingsError(AnalyzerError):
    kind = "memory settings error"


@dataclass(frozen=True)
class MemorySettings:
    """One run: a batch at inference, or a training step with an optimizer, on a backend."""

    batch: int = 1
    dtype: str = "fp32"
    mode: str = "inference"
    backend: str = CPU
    optimizer: str = DEFAULT_OPTIMIZER
    channel_block: int = 16     # oneDNN's channel block (AVX-512); see ops.base.Execution

    def __post_init__(self):
        get_dtype(self.dtype)
        if self.mode not in MODES:
            raise MemorySettingsError(f"unknown mode '{self.mode}'", hint=f"use {' or '.join(MODES)}")
        if self.backend not in BACKENDS:
            raise MemorySettingsError(f"unknown backend '{self.backend}'", hint=f"use {' or '.join(BACKENDS)}")
        if self.optimizer not in OPTIMIZERS:
            raise MemorySettingsError(f"unknown optimizer '{self.optimizer}'", hint=f"use {', '.join(OPTIMIZERS)}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or not 1 <= self.batch <= MAX_BATCH:
            raise MemorySettingsError(f"the batch size must be an integer from 1 to {MAX_BATCH:,}, got "
                                      f"{shown(self.batch)}")

    @property
    def training(self) -> bool:
        return self.mode == "train"

    def execution(self) -> Execution:
        dtype = get_dtype(self.dtype)
        return Execution(batch=self.batch, element_bytes=dtype.bytes, training=self.training, backend=self.backend,
                         autocast=self.training and dtype.half, channel_block=self.channel_block,
                         master_bytes=FP32.bytes)

    def describe(self) -> str:
        run = f"training step, {self.optimizer}" if self.training else "inference"
        return f"{run}, batch {self.batch}, {self.dtype}, {self.backend}"


@dataclass
class LayerMemory:
    """One layer's memory in the run, for the whole batch, in bytes."""

    path: str
    role: str
    activation_bytes: int       # its output, when it is new storage (0: a view or in place)
    saved_bytes: int            # tensors it makes only for the backward (indices, masks, statistics)
    kept_bytes: int             # of what it made, what is still alive when the forward pass ends
    workspace_bytes: int        # temporaries while its forward runs
    forward_bytes: int          # what its forward call adds at its peak: activation + saved + workspace
    grad_input_bytes: int = 0   # new gradients for its inputs
    grad_weight_bytes: int = 0  # its weights' gradients
    backward_workspace_bytes: int = 0
    backward_bytes: int = 0     # what its backward call adds at its peak
    peak_forward_bytes: int = 0           # everything alive at its forward call's peak
    live_after_forward_bytes: int = 0     # everything alive once its forward call returns
    peak_backward_bytes: int | None = None
    live_after_backward_bytes: int | None = None


@dataclass
class MemoryEstimate:
    """Bytes a run needs on the device at its peak, by kind (the roofline estimate and bench read it)."""

    weights_bytes: int          # parameters and buffers
    training_state_bytes: int   # gradients and optimizer states alive at the peak (0 at inference)
    activation_bytes: int       # the rest at the peak: inputs, activations, their gradients, workspace

    @property
    def total(self) -> int:
        return self.weights_bytes + self.training_state_bytes + self.activation_bytes

    def fits(self, free_bytes: int | None) -> bool | None:
        """Whether it fits in `free_bytes`; None when the free memory is unknown."""
        return None if free_bytes is None else self.total <= free_bytes


@dataclass
class MemoryReport:
    model: str
    settings: MemorySettings
    layers: list[LayerMemory]
    peak_bytes: int
    peak_phase: str             # "forward", "loss", "backward" or "optimizer step"
    peak_at: str                # the layer (or step) running at the peak
    at_peak: dict[str, int]     # KINDS -> bytes at the peak
    weights_bytes: int
    gradient_bytes: int         # every weight's gradient (after the backward pass)
    optimizer_state_bytes: int
    input_bytes: int
    kept_bytes: int             # activations alive when the forward pass ends (kept for the backward)
    notes: list[str] = field(default_factory=list)

    @property
    def estimate(self) -> MemoryEstimate:
        at = self.at_peak
        return MemoryEstimate(weights_bytes=at[WEIGHTS], training_state_bytes=at[GRADIENTS] + at[OPTIMIZER_STATE],
                              activation_bytes=self.peak_bytes - at[WEIGHTS] - at[GRADIENTS] - at[OPTIMIZER_STATE])


# ----------------------------------------------------------------------------- the walk
class _Pool:
    """Storages alive, by kind, with the peak and what it was made of."""

    def __init__(self, rounding: int):
        self.rounding = rounding
        self.sizes: dict[int, tuple[int, str]] = {}
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.live = 0
        self.peak = -1
        self.at_peak: dict[str, int] = {}
        self.where = ("", "")
        self._next = 0

    def alloc(self, nbytes: int, kind: str) -> int | None:
        if nbytes <= 0:
            return None
        if self.rounding > 1:
            nbytes = -(-nbytes // self.rounding) * self.rounding
        self._next += 1
        self.sizes[self._next] = (nbytes, kind)
        self.by_kind[kind] += nbytes
        self.live += nbytes
        return self._next

    def free(self, sid: int | None) -> None:
        if sid is None:
            return
        nbytes, kind = self.sizes.pop(sid)
        self.by_kind[kind] -= nbytes
        self.live -= nbytes

    def check(self, phase: str, where: str) -> None:
        if self.live > self.peak:
            self.peak = self.live
            self.at_peak = dict(self.by_kind)
            self.where = (phase, where)

    def transient(self, nbytes: int, phase: str, where: str) -> int:
        """Memory held only at this moment (a call's workspace): counted at the peak, then freed.
        Returns the total alive at this moment."""
        sid = self.alloc(nbytes, WORKSPACE)
        self.check(phase, where)
        live = self.live
        self.free(sid)
        return live


def _last_reference(counts: dict[int, int], sid: int | None) -> bool:
    """One holder of storage `sid` lets go: True when it was the last (its count is then removed)."""
    if sid is None:
        return False
    counts[sid] -= 1
    if counts[sid]:
        return False
    del counts[sid]
    return True


class _Walk:
    """One run of the graph: tensors, the storages behind them and who holds each."""

    def __init__(self, graph: Graph, settings: MemorySettings):
        self.graph = graph
        self.settings = settings
        self.run = settings.execution()
        self.pool = _Pool(CUDA_BLOCK if settings.backend == CUDA else 1)
        self.storage: dict[str, int | None] = {}    # tensor (node path) -> storage
        self.holders: dict[str, int] = {}           # tensor -> things still holding it
        self.tensors_of: dict[int, int] = {}        # storage -> tensors alive on it
        self.owner: dict[int, str] = {}             # storage -> the layer that made it
        self.extras: dict[str, int | None] = {}     # layer -> the tensors it made for its backward
        self.saved: dict[str, list[str]] = {}       # layer -> the tensors autograd keeps for its backward
        self.records: dict[str, LayerMemory] = {}
        self.grads: dict[str, int | None] = {}      # tensor -> its gradient (being summed)
        self.grad_refs: dict[int, int] = {}         # gradient storage -> holders
        self.grad_fresh: set[int] = set()           # gradient storages made as tensors of their own

    # -- tensors
    def _new_tensor(self, path: str, sid: int | None, holders: int) -> None:
        self.storage[path] = sid
        self.holders[path] = holders
        if sid is not None:
            self.tensors_of[sid] = self.tensors_of.get(sid, 0) + 1
        if holders == 0:
            self._drop_tensor(path)

    def _hold(self, path: str) -> None:
        self.holders[path] += 1

    def _release(self, path: str) -> None:
        self.holders[path] -= 1
        if self.holders[path] == 0:
            self._drop_tensor(path)

    def _drop_tensor(self, path: str) -> None:
        sid = self.storage[path]
        if _last_reference(self.tensors_of, sid):
            self.pool.free(sid)

    # -- the run
    def walk(self) -> MemoryReport:
        graph, settings, run, pool = self.graph, self.settings, self.run, self.pool
        training = settings.training
        nodes = [n for n in graph.layers() if training or n.role != AUX]   # aux heads run in training only
        sizes = [n.op.params(n.args, list(n.in_shapes), n.out_shape) for n in graph.layers()]
        params = sum(sizes)     # the aux heads' weights exist either way
        buffers = sum(n.op.buffers(n.args, list(n.in_shapes), n.out_shape) for n in graph.layers())
        weights = (params + buffers) * (run.master_bytes if training else run.element_bytes)
        optimizer = OPTIMIZERS[settings.optimizer]
        state = optimizer.states * params * run.master_bytes if training else 0
        pool.alloc(weights, WEIGHTS)
        pool.alloc(state, OPTIMIZER_STATE)
        # the images are in the run's dtype at inference (the model is cast); training feeds fp32
        inputs = run.bytes_of(graph.input_shape, run.master_bytes if training else None)
        image = pool.alloc(inputs, INPUTS)
        if training:
            inputs += settings.batch * LABEL_BYTES
            pool.alloc(settings.batch * LABEL_BYTES, INPUTS)
        pool.check("forward", INPUT)

        needs = needs_grad(graph) if training else {}
        readers: dict[str, int] = {}
        for node in nodes:
            for source in set(node.inputs):
                readers[source] = readers.get(source, 0) + 1
        heads = [graph.output, *(graph.aux_outputs if training else ())]
        self._new_tensor(INPUT, image, 1 + readers.get(INPUT, 0))     # the caller holds the images too

        for node in nodes:
            self._forward(node, readers, heads, needs)
        self._kept()
        if training:
            self._loss(heads)
            for node in reversed(nodes):
                if needs[node.path]:
                    self._backward(node, needs)
            # the step's temporaries: one (the largest) layer's at a time on the CPU, all at once on CUDA
            each = params if settings.backend == CUDA else max(sizes, default=0)
            pool.transient(optimizer.temporaries * each * run.master_bytes, "optimizer step", "(optimizer step)")
        phase, where = pool.where
        report = MemoryReport(
            model=graph.name, settings=settings, layers=[self.records[n.path] for n in nodes],
            peak_bytes=pool.peak, peak_phase=phase, peak_at=where, at_peak=pool.at_peak, weights_bytes=weights,
            gradient_bytes=params * run.master_bytes if training else 0, optimizer_state_bytes=state,
            input_bytes=inputs, kept_bytes=sum(r.kept_bytes for r in self.records.values()))
        return report

    def _forward(self, node, readers: dict[str, int], heads: list[str], needs: dict[str, bool]) -> None:
        run, pool = self.run, self.pool
        op, a, ins, out = node.op, node.args, list(node.in_shapes), node.out_shape
        memory = op.forward_memory(a, ins, out, run, runs_in_place(self.graph, node))
        if run.autocast and op.autocasts and INPUT in node.inputs:    # the fp32 image's 16-bit copy
            memory = dataclasses.replace(memory, saved_bytes=memory.saved_bytes + run.bytes_of(self.graph.input_shape))
        if run.training and not needs[node.path]:     # autograd keeps nothing for it: made, then dropped
            memory = ForwardMemory(memory.output, workspace_bytes=memory.workspace_bytes + memory.saved_bytes)
        if memory.output is Storage.NEW:
            sid = pool.alloc(run.bytes_of(out), ACTIVATIONS)
            if sid is not None:
                self.owner[sid] = node.path
            activation = run.bytes_of(out)
        else:
            sid, activation = self.storage[node.inputs[0]], 0
        extra = pool.alloc(memory.saved_bytes, ACTIVATIONS)
        if extra is not None:
            self.owner[extra] = node.path
        self.extras[node.path] = extra
        peak = pool.transient(memory.workspace_bytes, "forward", node.path)
        holders = readers.get(node.path, 0) + heads.count(node.path)
        self._new_tensor(node.path, sid, holders)
        for index in set(memory.saves_inputs):
            self._hold(node.inputs[index])
        if memory.saves_output:
            self._hold(node.path)
        self.saved[node.path] = ([node.inputs[i] for i in set(memory.saves_inputs)]
                                  + ([node.path] if memory.saves_output else []))
        for source in set(node.inputs):
            self._release(source)
        self.records[node.path] = LayerMemory(
            path=node.path, role=node.role, activation_bytes=activation, saved_bytes=memory.saved_bytes,
            kept_bytes=0, workspace_bytes=memory.workspace_bytes,
            forward_bytes=activation + memory.saved_bytes + memory.workspace_bytes,
            peak_forward_bytes=peak, live_after_forward_bytes=pool.live)

    def _kept(self) -> None:
        """Attribute what is alive at the end of the forward pass to the layers that made it."""
        for sid, (nbytes, kind) in self.pool.sizes.items():
            if kind == ACTIVATIONS and sid in self.owner:
                self.records[self.owner[sid]].kept_bytes += nbytes

    def _loss(self, heads: list[str]) -> None:
        """Each head's loss keeps its log-probabilities; the heads' outputs are let go (the step
        holds only the loss); each head's gradient (the logits' size) starts the backward pass."""
        run, pool = self.run, self.pool
        kept = []
        for head in heads:
            kept.append(pool.alloc(run.bytes_of(self.graph.node(head).out_shape, LOSS_BYTES), ACTIVATIONS))
        pool.check("loss", "(loss)")
        for head in heads:
            self._release(head)
        for head in heads:
            self._add_grad(head, self._new_grad(self.graph.node(head).out_shape))
        for sid in kept:
            pool.free(sid)

    # -- gradients of activations
    def _new_grad(self, shape) -> int | None:
        sid = self.pool.alloc(self.run.bytes_of(shape), ACTIVATION_GRADIENTS)
        if sid is not None:
            self.grad_refs[sid] = 1
            self.grad_fresh.add(sid)
        return sid

    def _share_grad(self, sid: int | None) -> int | None:
        if sid is not None:
            self.grad_refs[sid] += 1
            self.grad_fresh.discard(sid)
        return sid

    def _drop_grad(self, sid: int | None) -> None:
        if _last_reference(self.grad_refs, sid):
            self.grad_fresh.discard(sid)
            self.pool.free(sid)

    def _add_grad(self, path: str, sid: int | None, where: str = "") -> None:
        """A gradient for tensor `path` arrives: the first is kept as it is; a later one is summed
        into the kept one in place when that is a tensor of its own no one else holds (autograd's
        InputBuffer), else into a new one."""
        if path not in self.grads:
            self.grads[path] = sid
            return
        kept = self.grads[path]
        if kept is not None and kept in self.grad_fresh and self.grad_refs.get(kept) == 1:
            self._drop_grad(sid)
            return
        total = self._new_grad(self.graph.node(path).out_shape if path != INPUT else self.graph.input_shape)
        self.pool.check("backward", where)
        self._drop_grad(kept)
        self._drop_grad(sid)
        self.grads[path] = total

    def _backward(self, node, needs: dict[str, bool]) -> None:
        run, pool = self.run, self.pool
        op, a, ins, out = node.op, node.args, list(node.in_shapes), node.out_shape
        record = self.records[node.path]
        if node.path not in self.grads:      # no gradient reaches it: its backward never runs
            self._free_saved(node.path)
            return
        grad_out = self.grads.pop(node.path)
        input_grads = tuple(needs[source] for source in node.inputs)
        memory = op.backward_memory(a, ins, out, run, input_grads)
        arriving = []
        for source, shape, wanted in zip(node.inputs, ins, input_grads):
            if not wanted:
                continue
            if memory.grad_inputs is Storage.NEW:
                arriving.append((source, self._new_grad(shape)))
                record.grad_input_bytes += run.bytes_of(shape)
            else:
                arriving.append((source, self._share_grad(grad_out)))
        weights = op.params(a, ins, out) * run.master_bytes
        pool.alloc(weights, GRADIENTS)          # kept as .grad until the optimizer step (and after)
        record.grad_weight_bytes = weights
        record.backward_workspace_bytes = memory.workspace_bytes
        record.backward_bytes = record.grad_input_bytes + weights + memory.workspace_bytes
        record.peak_backward_bytes = pool.transient(memory.workspace_bytes, "backward", node.path)
        for source, sid in arriving:
            self._add_grad(source, sid, node.path)
        self._drop_grad(grad_out)
        self._free_saved(node.path)
        record.live_after_backward_bytes = pool.live

    def _free_saved(self, path: str) -> None:
        self.pool.free(self.extras.pop(path, None))
        for tensor in self.saved.pop(path, []):
            self._release(tensor)


def analyze_memory(graph: Graph, settings: MemorySettings | None = None) -> MemoryReport:
    """The memory of one run of `graph` (see the module docstring for what is counted)."""
    return _Walk(graph, settings or MemorySettings()).walk()


def largest_batch(graph: Graph, settings: MemorySettings, capacity_bytes: int) -> int:
    """The largest batch whose peak fits in `capacity_bytes` (0: not even one image).

    The peak grows with the batch (every tensor but the weights, their gradients and the optimizer
    state scales with it), nearly in proportion beyond a few images. So the peaks at 16 and 32 give
    a first guess by a straight line; from it, steps doubling outwards find a batch that fits and
    one that does not, and bisection between them the largest that fits: a handful of walks of
    the graph, each exact."""
    peaks: dict[int, int] = {}

    def peak(batch: int) -> int:
        if batch not in peaks:
            peaks[batch] = analyze_memory(graph, dataclasses.replace(settings, batch=batch)).peak_bytes
        return peaks[batch]

    def fits(batch: int) -> bool:
        return peak(batch) <= capacity_bytes

    if not fits(1):
        return 0
    slope = max((peak(32) - peak(16)) / 16, 1.0)
    guess = int(min(max(16 + (capacity_bytes - peak(16)) / slope, 1), MAX_BATCH))
    if fits(guess):
        low, step = guess, 1
        while low + step <= MAX_BATCH and fits(low + step):
            low, step = low + step, step * 2
        high = low + step
        if high > MAX_BATCH:
            return low if not (MAX_BATCH > low and fits(MAX_BATCH)) else MAX_BATCH
    else:
        high, step = guess, 1
        while high - step > 1 and not fits(high - step):
            high, step = high - step, step * 2
        low = max(high - step, 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low
