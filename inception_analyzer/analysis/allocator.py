"""Which of a model's output tensors land on fresh pages of memory: the host allocator simulated
over the tensors' lifetimes in an eager forward pass. Torch-free.

On Linux, torch's CPU tensors come from glibc's malloc. A request is served from the heap's
free blocks first (the best fit), then from the free space at its top. Only when the heap would
have to grow is a block of at least the mmap threshold mapped from the kernel on its own (and
unmapped when freed): a large tensor asked for after smaller ones were freed lands on their warm
pages (tests/test_host_allocator.py checks it in a real process). A smaller block grows the
heap's top. By default the threshold starts at 128 KiB and rises to the size of each mapped
block freed, up to 32 MiB (glibc's DEFAULT_MMAP_THRESHOLD_MAX). `bench` holds it at 32 MiB from
the start (bench/host_allocator.py: otherwise a measurement depends on what the process
allocated before it), and a profile calibrated by it says so (its `mmap_threshold_bytes`), so
the simulation starts where the measurement does; a profile with the default 128 KiB simulates
the default rule. When the free space at the top exceeds twice the threshold it is given back
to the kernel (keeping 128 KiB). Memory the kernel hands out anew is paged in on its first
touch: the kernel faults in and clears every page, which costs far more than writing warm memory
(on the development machine, a 2-core KVM guest, about 1.7 ns per fp32 element on one thread).

`calibrate` times every op on warm memory (it turns glibc's mapping and trimming off while it
measures, so an op run again and again reuses the block it freed), and measures apart what a
fresh page costs. In a model, tensors of many sizes live and die in an order of their own: this
simulation follows that order (the generated forward's: a tensor freed after its last reader,
in-place activations and views sharing their input's storage, the output dropped after the call)
over a few passes to a steady state, and reports for each layer the bytes it touches fresh: its
own mapped blocks, and the heap's growth over pages it had given back. Within a layer it replays
the blocks the op's call allocates and frees itself, in the order a trace of a real forward's
mallocs shows them (OpKind.call_blocks): a convolution's oneDNN reorders of its input and
weights, then its blocked output, the reorders freed, and only then its plain output; max
pooling's int64 indices after its output. A convolution's call reorders its weights on every
call: a block of the weights' size, which from 32 MiB on is mapped, faulted in and unmapped each
time. timm's VGG head, a 7x7 convolution of 512 -> 4096 channels, has 411 MB of weights: 150 ms a
call with malloc held steady against 49 ms on warm memory; a 3x3 of 1024 -> 2048 (75 MB) 29.9 ms
against 10.5 (nn.Linear with the same 411 MB: 14.6 ms either way).

Two rules of the real heap decide where those blocks land. torch asks glibc for 64-byte aligned
blocks, for which glibc needs a free block 96 bytes larger than the request: the hole a block
left is too small for the next block of the same size, which grows the heap instead (resnet18 at
batch 8: conv1's blocked output and its batch norm's output are both 24.5 MiB). And small blocks
come from the small free chunks a process holds among its long-lived objects, not from the space
the large ones share. Replayed through these rules, the trace of torchvision's resnet18 at batch
8 gives the 67 MiB a pass its process faulted in (the heap grows past twice the threshold, is
trimmed at the end of the pass, and grows again). The prediction prices the fresh bytes at the
profile's measured cost per byte.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..graph import Graph, MainLayer, Node, main_layers
from ..ops.base import CPU, OUTPUT, Alloc, Execution
from .roofline import shapes_move_data

MIB = 2**20
KIB = 2**10
PAGE = 4096
MMAP_THRESHOLD_MAX = 32 * MIB                     # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
ALIGN = 16
# torch's CPU allocator asks glibc for 64-byte aligned blocks (posix_memalign): glibc then looks for
# a free block 64 + 32 bytes (the alignment and its smallest chunk) larger than the request and gives
# the slivers it cuts off either side to small requests. A hole a block of the same size left is
# therefore too small for it (module docstring).
ALIGNMENT_SLACK = 64 + 32
# A process holds many small free chunks among its long-lived objects: a small block is served from
# them, not from the space the large blocks share, so it neither fills nor bridges their holes (a
# layer's reordered 3x3 weights, 37 KB for 3 -> 64 channels, would otherwise join the two holes of a
# freed 24.5 MiB block and its neighbour into one that holds the next 24.5 MiB output).
SMALL_BLOCK = 256 * KIB
SETTLING_LAYERS = 64    # the layers over which a pass is compared with the pass before (fresh_bytes)


@dataclass(frozen=True)
class Allocator:
    """glibc malloc's handling of large blocks, and what a fresh page costs on this machine."""

    fault_seconds_per_byte: float                 # first touch of memory the kernel hands out anew
    kind: str = "glibc"
    mmap_threshold: int = 128 * KIB               # the initial threshold (M_MMAP_THRESHOLD)
    mmap_threshold_max: int = MMAP_THRESHOLD_MAX  # the most it rises to
    top_pad: int = 128 * KIB                      # kept at the top when the heap is trimmed (M_TOP_PAD)
    layout_copies: bool = False                   # torch has oneDNN: convolutions compute on blocked copies
    channel_block: int = 16                       # oneDNN's channel block there (16 with AVX-512, 8 with AVX2)


class _Heap:
    """The heap's blocks by address: [start, size, free], the top, and the pages backed."""

    def __init__(self, allocator: Allocator):
        self.allocator = allocator
        self.starts: list[int] = []
        self.blocks: dict[int, list] = {}
        self.top = 0
        self.backed = 0                           # pages below this are in memory
        self.threshold = allocator.mmap_threshold

    def malloc(self, size: int) -> tuple[tuple, int]:
        """(handle, bytes on fresh pages), as glibc serves a request: the best-fitting free block
        below the top, else the top's free space when it holds the block, and only then, when the
        heap would have to grow, a block of at least the threshold mapped on its own, a smaller one
        from the heap's growth."""
        if size < SMALL_BLOCK:                    # served from the small free chunks the process holds
            return ("small", size), 0
        size = -(-(size + ALIGN) // ALIGN) * ALIGN     # the request and the block's header
        last = self.blocks[self.starts[-1]] if self.starts else None
        top_free = last if last is not None and last[2] else None
        best = None
        for start in self.starts:
            block = self.blocks[start]
            if block is not top_free and block[2] and block[1] >= size + ALIGNMENT_SLACK \
                    and (best is None or block[1] < best[1]):
                best = block
        if best is not None:                      # a free block: pages already backed
            if best[1] > size:
                self._insert([best[0] + size, best[1] - size, True])
            best[1], best[2] = size, False
            return ("heap", best[0]), 0
        start = top_free[0] if top_free is not None else self.top
        if size >= self.threshold and start + size > self.backed:
            pages = -(-size // PAGE) * PAGE              # a mapping of whole pages, all fresh
            return ("mmap", pages), pages
        if top_free is not None:                  # the top grows over its free space first
            self._remove(start)
        self._insert([start, size, False])
        self.top = start + size
        fresh = max(0, self.top - self.backed)
        self.backed = max(self.backed, self.top)
        return ("heap", start), fresh

    def free(self, handle: tuple) -> None:
        kind, value = handle
        if kind == "small":
            return
        if kind == "mmap":
            if self.threshold < value <= self.allocator.mmap_threshold_max:
                self.threshold = value            # glibc's dynamic threshold
            return
        block = self.blocks[value]
        block[2] = True
        index = bisect.bisect_left(self.starts, value)
        if index + 1 < len(self.starts) and self.blocks[self.starts[index + 1]][2]:
            following = self.blocks[self.starts[index + 1]]
            block[1] += following[1]
            self._remove(following[0])
        if index > 0 and self.blocks[self.starts[index - 1]][2]:
            previous = self.blocks[self.starts[index - 1]]
            previous[1] += block[1]
            self._remove(block[0])
            block = previous
        # glibc's top chunk is all the free space from the last block in use up to the heap's end,
        # the backed pages above `top` that no block holds included: past twice the threshold it
        # goes back to the kernel (trimmed), whichever block's free made it so
        last = self.blocks[self.starts[-1]]
        top_chunk_start = last[0] if last[2] else self.top
        if self.backed - top_chunk_start > 2 * self.threshold:
            if last[2]:
                self._remove(last[0])
            self.top = top_chunk_start
            self.backed = min(self.backed, -(-(self.top + self.allocator.top_pad) // PAGE) * PAGE)

    def state(self) -> tuple:
        """Everything the next request's answer depends on."""
        return (tuple(tuple(self.blocks[start]) for start in self.starts), self.top, self.backed, self.threshold)

    def _insert(self, block: list) -> None:
        bisect.insort(self.starts, block[0])
        self.blocks[block[0]] = block

    def _remove(self, start: int) -> None:
        self.starts.pop(bisect.bisect_left(self.starts, start))
        del self.blocks[start]


def fresh_bytes(graph: Graph, batch: int, element_bytes: int, allocator: Allocator, passes: int = 4,
                layers: list[MainLayer] | None = None) -> dict[str, int]:
    """Each main-path layer's bytes of heap growth onto fresh pages in a steady-state forward
    pass (the last of `passes`): the module docstring's rules. A pass is a function of the heap
    it starts on, so once one leaves the heap as the pass before it did, every later pass repeats
    it: the simulation stops there with the same figures. Likewise within a pass: once the heap
    and the places of the live tensors after a layer are what they were after that layer in the
    pass before, the rest of the pass repeats that one's, figures and end alike. The second pass
    mostly gets there within its first few dozen layers (in 66 of the 72 model-and-batch cases
    of docs/benchmarks.md, "Every op kind timed"), else late or never: the states are compared
    over the first SETTLING_LAYERS layers only, as keeping them for every layer would cost more
    than it saves. `layers` is graph.main_layers(graph), where the caller has it already."""
    layers = main_layers(graph) if layers is None else layers
    last_read: dict[str, int] = {}
    for index, layer in enumerate(layers):
        for source in layer.node.inputs:
            last_read[source] = index
    heap = _Heap(allocator)
    run = Execution(batch, element_bytes, training=False, backend=CPU, channel_block=allocator.channel_block,
                    onednn=allocator.layout_copies)
    # what each call allocates and frees, where its output lives and which tensors die after it
    # are the same every pass; the first three are the same for the layers of one signature
    per_signature: dict[tuple, tuple[list, int, bool]] = {}
    steps = []
    for index, layer in enumerate(layers):
        node = layer.node
        if layer.signature not in per_signature:
            per_signature[layer.signature] = (
                node.op.call_blocks(node.args, list(node.in_shapes), node.out_shape, run),
                run.bytes_of(node.out_shape), _shares_input(layer))
        steps.append(_LayerSteps(node, *per_signature[layer.signature],
                                 # in order: a set's order varies by process (hash seed)
                                 [source for source in dict.fromkeys(node.inputs)
                                  if last_read.get(source) == index and source != graph.output]))
    fresh: dict[str, int] = {}
    ended_on = heap.state()
    last_pass: list[tuple] = []                   # the state after each layer of the pass before
    for _ in range(passes):
        storage: dict[str, str] = {}              # tensor -> the tensor whose storage it shares
        holders: dict[str, list] = {}             # live storage -> [handle, tensors alive on it]
        this_pass: list[tuple] = []
        for index, layer in enumerate(steps):
            node = layer.node
            new = 0
            held: list = []                       # the call's own blocks, in the order it allocates them
            for step in layer.calls:
                if step is OUTPUT:
                    new += _allocate_output(heap, node, layer.output_bytes, layer.shares_input, storage, holders)
                elif type(step) is Alloc:
                    handle, more = heap.malloc(step.bytes)
                    held.append(handle)
                    new += more
                elif held[step.index] is not None:
                    heap.free(held[step.index])
                    held[step.index] = None
            for handle in reversed(held):         # what the call still holds, freed as it returns
                if handle is not None:
                    heap.free(handle)
            fresh[node.path] = new
            for source in layer.dying:
                if source in storage:
                    _release(heap, holders, storage[source])
            if index < SETTLING_LAYERS:
                # the heap and where each live tensor lies: all that the rest of the pass depends on
                this_pass.append((heap.state(), tuple(holder[0] for holder in holders.values())))
                if index < len(last_pass) and this_pass[-1] == last_pass[index]:
                    return fresh                  # the rest repeats the pass before, whose figures stand
        if graph.output in storage:               # the caller drops the output after the call
            _release(heap, holders, storage[graph.output])
        state = heap.state()
        if state == ended_on:
            break
        ended_on, last_pass = state, this_pass
    return fresh


@dataclass(frozen=True)
class _LayerSteps:
    """One layer as every pass replays it."""

    node: Node
    calls: list                                   # OpKind.call_blocks: Alloc, Free and OUTPUT in call order
    output_bytes: int
    shares_input: bool                            # its output is its input's storage
    dying: list[str]                              # the tensors it reads last


def _allocate_output(heap: _Heap, node, size: int, shares_input: bool, storage: dict, holders: dict) -> int:
    """The layer's output: a block of its own, or its input's storage (in place, a view): bytes fresh."""
    if shares_input:
        if node.inputs[0] in storage:
            owner = storage[node.inputs[0]]
            storage[node.path] = owner
            holders[owner][1] += 1
        return 0
    handle, fresh = heap.malloc(size)
    storage[node.path] = node.path
    holders[node.path] = [handle, 1]
    return fresh


def _shares_input(layer: MainLayer) -> bool:
    """The layer's output is its input's storage: an in-place activation, or a view or no-op."""
    if layer.in_place:
        return True
    node = layer.node
    op, args = node.op, node.args
    ins, out = list(node.in_shapes), node.out_shape
    return len(ins) == 1 and not shapes_move_data(op.macs(args, ins, out), op.other_flops(args, ins, out), ins, out, op)


def _release(heap: _Heap, holders: dict[str, list], owner: str) -> None:
    holders[owner][1] -= 1
    if holders[owner][1] == 0:
        heap.free(holders.pop(owner)[0])
