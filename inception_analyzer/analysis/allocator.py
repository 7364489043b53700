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
own mapped blocks, and the heap's growth over pages it had given back. Where the backend
computes on copies of a layer's tensors (`layout_copies`: on a CPU, oneDNN's convolutions and
linear layers copy their input and output into its blocked layout, blocks allocated and freed
inside the op), those copies are allocated too, after the layer's output (of the orders tried
against a real process's page faults, the closest; docs/benchmarks.md). A convolution's call
also reorders its weights (a linear layer's does not): a block of the weights' size, which from
32 MiB on is mapped, faulted in and unmapped on every call. timm's VGG head, a 7x7 convolution
of 512 -> 4096 channels, has 411 MB of weights: 150 ms a call with malloc held steady against 49
ms on warm memory; a 3x3 of 1024 -> 2048 (75 MB) 29.9 ms against 10.5 (nn.Linear with the
same 411 MB: 14.6 ms either way). The prediction prices the fresh bytes at the profile's
measured cost per byte.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..graph import AUX, Graph, runs_in_place
from ..numbers import numel
from ..ops import Category
from .roofline import shapes_move_data

MIB = 2**20
KIB = 2**10
PAGE = 4096
MMAP_THRESHOLD_MAX = 32 * MIB                     # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
ALIGN = 16


@dataclass(frozen=True)
class Allocator:
    """glibc malloc's handling of large blocks, and what a fresh page costs on this machine."""

    fault_seconds_per_byte: float                 # first touch of memory the kernel hands out anew
    kind: str = "glibc"
    mmap_threshold: int = 128 * KIB               # the initial threshold (M_MMAP_THRESHOLD)
    mmap_threshold_max: int = MMAP_THRESHOLD_MAX  # the most it rises to
    top_pad: int = 128 * KIB                      # kept at the top when the heap is trimmed (M_TOP_PAD)
    layout_copies: bool = False                   # conv and linear layers compute on copies of their tensors


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
        size = -(-(size + ALIGN) // ALIGN) * ALIGN     # the request and the block's header
        last = self.blocks[self.starts[-1]] if self.starts else None
        top_free = last if last is not None and last[2] else None
        best = None
        for start in self.starts:
            block = self.blocks[start]
            if block is not top_free and block[2] and block[1] >= size and (best is None or block[1] < best[1]):
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
        last = self.blocks[self.starts[-1]]
        if last[2] and last[1] > 2 * self.threshold:   # trim: the top's free space goes back to the kernel
            self._remove(last[0])
            self.top = last[0]
            self.backed = min(self.backed, -(-(self.top + self.allocator.top_pad) // PAGE) * PAGE)

    def _insert(self, block: list) -> None:
        bisect.insort(self.starts, block[0])
        self.blocks[block[0]] = block

    def _remove(self, start: int) -> None:
        self.starts.pop(bisect.bisect_left(self.starts, start))
        del self.blocks[start]


def fresh_bytes(graph: Graph, batch: int, element_bytes: int, allocator: Allocator, passes: int = 4
                ) -> dict[str, int]:
    """Each main-path layer's bytes of heap growth onto fresh pages in a steady-state forward
    pass (the last of `passes`): the module docstring's rules."""
    layers = [node for node in graph.layers() if node.role != AUX]
    last_read: dict[str, int] = {}
    for index, node in enumerate(layers):
        for source in node.inputs:
            last_read[source] = index
    heap = _Heap(allocator)
    fresh: dict[str, int] = {}
    for _ in range(passes):
        storage: dict[str, str] = {}              # tensor -> the tensor whose storage it shares
        holders: dict[str, list] = {}             # storage -> [handle, tensors alive on it]
        for index, node in enumerate(layers):
            shares = _shares_input(graph, node)
            new = 0
            if shares and node.inputs[0] in storage:
                owner = storage[node.inputs[0]]
                storage[node.path] = owner
                holders[owner][1] += 1
            elif not shares:
                handle, more = heap.malloc(batch * numel(node.out_shape) * element_bytes)
                new += more
                storage[node.path] = node.path
                holders[node.path] = [handle, 1]
            copies = []
            staged = node.op.staged_input(node.args, list(node.in_shapes))
            if staged is not None:   # a padded copy of the input, made first
                handle, more = heap.malloc(batch * numel(staged) * element_bytes)
                copies.append(handle)
                new += more
            convolution = node.op.geometry(node.args, list(node.in_shapes), node.out_shape) is not None
            if allocator.layout_copies and (node.op.category is Category.LINEAR or convolution):
                sizes = [batch * numel(shape) * element_bytes for shape in (node.in_shapes[0], node.out_shape)]
                if convolution:   # oneDNN reorders a convolution's weights too, on every call
                    sizes.append(node.op.params(node.args, list(node.in_shapes), node.out_shape) * element_bytes)
                for size in sizes:
                    handle, more = heap.malloc(size)
                    copies.append(handle)
                    new += more
            for handle in copies:
                heap.free(handle)
            fresh[node.path] = new
            for source in dict.fromkeys(node.inputs):   # in order: a set's order varies by process (hash seed)
                if last_read.get(source) == index and source in storage and source != graph.output:
                    _release(heap, holders, storage[source])
        if graph.output in storage:               # the caller drops the output after the call
            _release(heap, holders, storage[graph.output])
    return fresh


def _shares_input(graph: Graph, node) -> bool:
    """The layer's output is its input's storage: an in-place activation, or a view or no-op."""
    if runs_in_place(graph, node):
        return True
    op, args = node.op, node.args
    ins, out = list(node.in_shapes), node.out_shape
    return len(ins) == 1 and not shapes_move_data(op.macs(args, ins, out), op.other_flops(args, ins, out), ins, out,
                                                  op.views_input)


def _release(heap: _Heap, holders: dict[str, list], owner: str) -> None:
    holders[owner][1] -= 1
    if holders[owner][1] == 0:
        heap.free(holders[owner][0])
