"""Any PyTorch model -> the graph IR, through torch.fx: `from_module(model, (3, 224, 224))`.

The model is traced symbolically (torch.fx), its tensor shapes are recorded by one forward
pass on zeros, and every traced operation is mapped onto an op kind of the registry: a call of
a torch.nn module through the kind's `torch_modules`, a function or tensor method through its
`torch_calls` (which name the call's arguments). The IR's node paths are the modules' own
qualified names (`Mixed_5b.branch5x5_1.conv`), so the analysis lines up with the model's
`named_modules()` and a spec written from the IR builds a model that loads its state_dict.

Nothing is counted by guess. Operations no op kind expresses (a custom CUDA op, a mask, a
slice, a module with settings we cannot model) are listed by name, kind, module and source
line with a status, and the import fails with that list, as the `strict` option of torchscan
does; a traced shape that disagrees with our shape rule fails the same way. With strict=False
each of them becomes an `opaque` op instead: its traced output shape and the weights it reads
are kept, its MACs and FLOPs are unknown, and the analysis says its totals are partial and
names those ops. Parameters the trace never reached are reported, never silently dropped.

Auxiliary heads (torchvision's Inception-v3 and GoogLeNet) run only in training mode: when the
eval-mode trace leaves weights unreached, the model is traced again in training mode (on a
copy, so its running statistics stay untouched), and the outputs after the first become the
IR's auxiliary heads, as in the specs.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import io
import itertools
import math
import operator
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.utils._pytree import tree_leaves

from .errors import AnalyzerError, SourceLocation
from .graph import AUX, INPUT, MAIN, Graph, Node, Scope, fork_of, positions
from .numbers import dims_text
from .ops import OPS, Movement, OpKind, Unmodelled, WeightRef
from .ops.base import refuse_unless
from .spec.schema import Spec

# Modules the trace looks into rather than mapping: containers, and any class no op kind names
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# Calls that ask about shapes or assert; they make no tensor and cost nothing
SHAPE_QUERIES = {"size", "dim", "numel", "shape", "_assert", "getattr"}


class _Runtime:
    """An argument computed from the input at run time (x.size(0) // 2): no op kind takes it."""

    def __repr__(self) -> str:
        return "<computed at run time>"


_RUNTIME = _Runtime()


class ModelImportError(AnalyzerError):
    kind = "import error"


@dataclass(frozen=True)
class UnmodelledOp:
    """One traced operation the registry cannot express, with where it is and why."""

    name: str          # the fx node's name (unique in the trace)
    target: str        # the module class or function it calls
    module: str        # the module it runs in ('' = the model's own forward)
    location: str      # file:line of the model's source that called it
    status: str        # "unsupported" | "unsupported settings" | "shape mismatch" | "shared weights"
    reason: str

    def line(self) -> str:
        where = f"in {self.module}" if self.module else "in the model's forward"
        return f"{self.location}: {self.name} ({self.target}, {where}): {self.status}: {self.reason}"


@dataclass
class ImportedModel:
    """The IR of a traced model, with what the spec writer needs to know about its modules."""

    graph: Graph
    reference: str                              # what was imported ('torchvision.models:inception_v3')
    module_types: dict[str, str] = field(default_factory=dict)   # module path -> class name
    containers: set[str] = field(default_factory=set)            # Sequential & co: no template
    module_paths: set[str] = field(default_factory=set)         # IR nodes that are modules
    unreached: dict[str, int] = field(default_factory=dict)      # module -> params the trace skipped
    traced_in: str = "eval"
    unmodelled: list[UnmodelledOp] = field(default_factory=list)  # kept as opaque ops (strict=False)
    notes: list[str] = field(default_factory=list)               # what the command should say once


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    return f"{module}.{getattr(obj, '__name__', repr(obj))}"


def _resolve(dotted: str):
    """'torch.nn.functional.relu' -> the object, or None where there is no such name. Names of
    other packages (torchvision.ops...) resolve only when the model's code already imported them:
    a model that never imported torchvision cannot call it."""
    module_name, _, attribute = dotted.rpartition(".")
    if not (module_name == "torch" or module_name.startswith(("torch.", "_operator"))) \
            and module_name not in sys.modules:
        return None
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except Exception:  # noqa: BLE001 - a package that fails to import offers no function to match
        return None


@dataclass(frozen=True)
class _Entry:
    """One op kind a torch function or method may stand for, with the names of the call's
    arguments after its tensor input(s); `piece`: the call returns several tensors, the op is one."""

    op: OpKind
    signature: tuple[str, ...]
    piece: bool = False


def _call_table() -> tuple[dict[int, list[_Entry]], dict[str, list[_Entry]]]:
    """The registry's torch functions (by object identity) and tensor methods (by name). One
    function may stand for several ops (`x * 0.17` is a scale, `x * gate` a merge, `gamma * x` a
    layer scale): each op's `from_torch_call` says whether it takes the call."""
    functions: dict[int, list[_Entry]] = {}
    methods: dict[str, list[_Entry]] = {}
    for op in OPS.values():
        calls = [(name, signature, False) for name, signature in op.torch_calls.items()]
        calls += [(name, signature, True) for name, signature in op.torch_piece_calls.items()]
        for name, signature, piece in calls:
            if name.startswith("."):
                methods.setdefault(name[1:], []).append(_Entry(op, signature, piece))
            else:
                target = _resolve(name)
                if target is not None:
                    functions.setdefault(id(target), []).append(_Entry(op, signature, piece))
    return functions, methods


def _module_table() -> dict[type, list[OpKind]]:
    table: dict[type, list[OpKind]] = {}
    for op in OPS.values():
        for class_name in op.torch_modules:
            cls = getattr(nn, class_name, None)
            if cls is not None:
                table.setdefault(cls, []).append(op)
    return table


# Calls that only move data (views, reshapes, permutations). What such a call did is worked out on
# an index tensor (which element of the tensor it started from each element of its result is), then
# read: the same elements in the same order (nothing happened), the axes in another order (ConvNeXt's
# x.permute(0, 2, 3, 1): the ops after it read channels last), or a movement an op kind expresses
# (`from_movement`: a flatten, a channel shuffle written as view/transpose/view).
DATA_MOVEMENT = frozenset({"view", "reshape", "permute", "transpose", "contiguous", "flatten", "unflatten",
                           "squeeze", "unsqueeze", "swapaxes", "swapdims", "movedim"})


def _movement(node: fx.Node) -> str | None:
    if node.op == "call_method" and node.target in DATA_MOVEMENT:
        return node.target
    if node.op == "call_function" and getattr(node.target, "__name__", None) in DATA_MOVEMENT \
            and getattr(torch, node.target.__name__, None) is node.target:
        return node.target.__name__
    return None


class _Propagation(ShapeProp):
    """ShapeProp, and for each data movement call, which element of the tensor its chain of
    movements started from every element of its result (one image) is: meta["movement"] =
    (that tensor's node, an index tensor of the result's per-image shape).

    It interprets the traced graph on the model itself: no fx.GraphModule is made, whose generated
    Python source would not compile for a submodule named like a keyword (`self.block.from`)."""

    def __init__(self, module: nn.Module, graph: fx.Graph):
        fx.Interpreter.__init__(self, module, graph=graph)
        self.fake_module = self.fake_mode = None
        self.real_module = self.module

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if _movement(n) is not None and isinstance(result, torch.Tensor) and n.args \
                and isinstance(n.args[0], fx.Node):
            self._track(n, result)
        return result

    def _track(self, n: fx.Node, result: torch.Tensor) -> None:
        source = n.args[0]
        value = self.env.get(source)
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or result.dim() == 0:
            return
        base, index = source.meta.get("movement") or (source, None)
        base_meta = base.meta.get("tensor_meta")
        if base_meta is None or not hasattr(base_meta, "shape"):
            return
        per_image = math.prod(base_meta.shape[1:])
        if index is None:
            index = torch.arange(per_image).view(tuple(base_meta.shape[1:]))
        batch = value.shape[0]
        # every image numbered on from the last: a movement that mixes images shows it
        offsets = (torch.arange(batch) * per_image).view(-1, *([1] * index.dim()))
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        full = index.unsqueeze(0) + offsets
        try:
            moved = (getattr(full, n.target)(*args[1:], **kwargs) if n.op == "call_method"
                     else n.target(full, *args[1:], **kwargs))
        except Exception:  # noqa: BLE001 - a movement we cannot follow stays unmodelled
            return
        if moved.shape != result.shape or moved.shape[0] != batch:
            return
        first = moved[0]
        if first.numel() and (first.min() < 0 or first.max() >= per_image):
            return   # mixes images
        n.meta["movement"] = (base, first.clone())


def _constants(fx_graph: fx.Graph) -> dict[fx.Node, frozenset[str]]:
    """The nodes computed from weights alone (gamma.reshape(1, -1, 1, 1)), with the weights they read:
    values the model holds, not tensors it computes from its input."""
    constant: dict[fx.Node, frozenset[str]] = {}
    for node in fx_graph.nodes:
        if node.op == "get_attr":
            constant[node] = frozenset({node.target})
        elif node.op in ("call_function", "call_method"):
            inputs = node.all_input_nodes
            if all(i in constant for i in inputs) and node.meta.get("tensor_meta") is not None:
                constant[node] = frozenset().union(*(constant[i] for i in inputs))
    return constant


class _Tracer(fx.Tracer):
    """Leaves are exactly the torch.nn classes the registry maps; everything else, subclasses
    included (timm's BatchNormAct2d is a BatchNorm2d that also activates), is traced through."""

    def __init__(self, leaf_types: set[type]):
        super().__init__()
        self.leaf_types = leaf_types
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in self.leaf_types


class _ShapedProxy(fx.Proxy):
    """A proxy that also holds the value its node has on the example input, so that its shape is
    a number (`value` stays None where the value could not be worked out)."""

    value: Any = None

    def size(self, dim: int | None = None) -> Any:
        if isinstance(self.value, torch.Tensor):
            return self.value.size() if dim is None else self.value.size(dim)
        return self.tracer.create_proxy("call_method", "size", (self,) if dim is None else (self, dim), {})

    def dim(self) -> Any:
        if isinstance(self.value, torch.Tensor):
            return self.value.dim()
        return self.tracer.create_proxy("call_method", "dim", (self,), {})

    @property
    def ndim(self) -> Any:
        if isinstance(self.value, torch.Tensor):
            return self.value.ndim
        return self.tracer.create_proxy("call_function", getattr, (self, "ndim"), {})

    @property
    def shape(self) -> Any:
        if isinstance(self.value, torch.Tensor):
            return self.value.shape
        return self.tracer.create_proxy("call_function", getattr, (self, "shape"), {})


class _ShapeTracer(_Tracer):
    """The second try for a forward that branches on its tensors' shapes (timm's VGG head pools
    only `if x.shape[-2] < self.input_kernel_size`), which symbolic tracing cannot follow: every node is
    also run on the example input, so a shape is a number and the trace records the branch that
    the imported input size takes. Shapes become constants of that trace; the import is at one
    input size anyway, and the spec it writes is checked against it. A branch on values (not
    shapes) still fails: a proxy's truth is never taken from its example."""

    def __init__(self, leaf_types: set[type], example: torch.Tensor):
        super().__init__(leaf_types)
        self.example = example
        self.computing_examples = False

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ShapedProxy(node, self)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        return attr_val if self.computing_examples else super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if not isinstance(proxy, _ShapedProxy):
            return proxy
        self.computing_examples = True    # the example values read the model's own weights, not proxies
        try:
            values = fx.node.map_aggregate(args, _example_value)
            keywords = fx.node.map_aggregate(kwargs, _example_value)
            with torch.no_grad():
                if kind == "placeholder":
                    proxy.value = self.example if not self.placed else None
                    self.placed = True
                elif kind == "call_function":
                    proxy.value = target(*values, **keywords)
                elif kind == "call_method":
                    proxy.value = getattr(values[0], target)(*values[1:], **keywords)
                elif kind == "call_module":
                    # its forward, not its call: torch.fx routes module calls to the tracer
                    proxy.value = self.root.get_submodule(target).forward(*values, **keywords)
                elif kind == "get_attr":
                    proxy.value = operator.attrgetter(target)(self.root)
        except Exception:  # noqa: BLE001 - a value it cannot work out only leaves that shape unknown
            proxy.value = None
        finally:
            self.computing_examples = False
        return proxy

    def trace(self, root, concrete_args=None):
        self.placed = False
        return super().trace(root, concrete_args)


def _example_value(value: Any) -> Any:
    if isinstance(value, _ShapedProxy):
        if value.value is None:
            raise ValueError("unknown value")
        return value.value
    return value


def _fold_borders(graph: Graph) -> None:
    """Zeros put around a map that one convolution alone reads become that convolution's padding:
    TensorFlow's 'same' padding of a strided convolution (timm's Conv2dSame: F.pad by what the
    input size needs, then the convolution with none) is one layer whose padding is larger after
    the map, as TensorFlow defines it, not a layer of its own on a grid one pixel larger."""
    outputs = {graph.output, *graph.aux_outputs}
    for node in list(graph.order):
        border = node.op.zero_border(node.args) if node.path != INPUT else None
        readers = list(graph.dag.successors(node.path)) if border else []
        if len(readers) != 1 or node.path in outputs:
            continue
        reader = graph.node(readers[0])
        args = reader.op.with_border(reader.args, border) if reader.inputs == (node.path,) else None
        if args is not None:
            graph.fold(node.path, reader.path, args)


def _source_location(node: fx.Node) -> SourceLocation:
    """The line of model code that made this node: the innermost frame outside torch, else (a
    call inside one of torch's own modules, nn.Hardswish's F.hardswish) the innermost frame
    outside torch.fx."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
    frames = [(file, line) for file, line in frames if file != __file__]   # the tracer's own (_ShapeTracer)
    torch_dir = str(Path(torch.__file__).parent)
    fx_dir = str(Path(fx.__file__).parent)
    for file, line in reversed(frames):
        if not file.startswith(torch_dir):
            return SourceLocation(file, int(line))
    for file, line in reversed(frames):
        if not file.startswith(fx_dir) and "torch/utils" not in file and "torch/_" not in file:
            return SourceLocation(file, int(line))
    return SourceLocation("<unknown source>")


def _scope(node: fx.Node) -> str:
    """The module a functional call runs in. A module traced through and called again (one
    StochasticDepth applied to two branches) runs its ops in a scope of its own per call:
    `drop_path`, then `drop_path_1` (torch.fx marks the calls `drop_path@1`)."""
    stack = node.meta.get("nn_module_stack") or {}
    original = renamed = ""
    for key, (path, _) in stack.items():
        relative = path[len(original) + 1:] if original and path.startswith(original + ".") else path
        original, renamed = path, _join(renamed, relative) if relative != path or not renamed else relative
        call = key.rpartition("@")[2]
        if "@" in key and call.isdigit() and int(call) > 0:
            renamed = f"{renamed}_{call}"
    return renamed


def _shape_of(node: Any) -> tuple | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape)[1:]


class _Importer:
    def __init__(self, model: nn.Module, input_shape: tuple[int, int, int], reference: str, name: str,
                 strict: bool = True):
        self.model = model
        self.strict = strict
        self.input_shape = tuple(input_shape)
        self.reference = reference
        self.name = name
        self.functions, self.methods = _call_table()
        self.module_ops = _module_table()

    # -- tracing
    def trace(self, training: bool) -> tuple[nn.Module, fx.Graph]:
        model = copy.deepcopy(self.model) if training else self.model
        was_training = model.training
        model.train(training)
        try:
            # training-mode batch norm needs two values per channel; no gradients, no side effects
            # on the caller's model (the training trace runs on a copy)
            batch = 2 if training else 1
            try:
                try:
                    graph = _Tracer(set(self.module_ops)).trace(model)
                except fx.proxy.TraceError as symbolic:   # control flow: on shapes, a trace with shapes known follows it
                    try:
                        graph = _ShapeTracer(set(self.module_ops), torch.zeros(batch, *self.input_shape)).trace(model)
                    except AssertionError as check:   # the model's own check of the input, at its real shapes
                        raise ModelImportError(f"{self.reference} does not run on a {list(self.input_shape)} input: "
                                               f"AssertionError: {_first_line(check)}", SourceLocation(self.reference),
                                               hint="give the input size it expects (--input-size)") from None
                    except Exception:  # noqa: BLE001 - the symbolic trace's reason is the one to give
                        raise symbolic from None
            except ModelImportError:
                raise
            except Exception as err:  # noqa: BLE001 - fx's own errors name the Python construct
                raise ModelImportError(f"torch.fx cannot trace {self.reference}: {type(err).__name__}: "
                                       f"{_first_line(err)}", SourceLocation(self.reference),
                                       hint="data-dependent Python control flow cannot be traced; "
                                       "see torch.fx's limitations") from None
            try:
                # ShapeProp prints the model's traceback itself before raising: keep it off the terminal
                with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                    _Propagation(model, graph).propagate(torch.zeros(batch, *self.input_shape))
            except Exception as err:  # noqa: BLE001
                cause = err.__cause__ or err  # ShapeProp wraps the model's own error
                raise ModelImportError(f"{self.reference} does not run on a {list(self.input_shape)} input: "
                                       f"{type(cause).__name__}: {_first_line(cause)}",
                                       SourceLocation(self.reference), hint="give the input size it expects "
                                       "(--input-size)") from None
            return model, graph
        finally:
            model.train(was_training)

    def run(self) -> ImportedModel:
        module, fx_graph = self.trace(training=False)
        imported = self._convert(module, fx_graph, "eval")
        if imported.unreached:
            # heads that run only in training (aux classifiers): trace that mode too
            trained_module, trained_graph = self.trace(training=True)
            trained = self._convert(trained_module, trained_graph, "train")
            if len(trained.unreached) < len(imported.unreached) and trained.graph.aux_outputs:
                return trained
        return imported

    # -- conversion
    def _convert(self, gm: nn.Module, fx_graph: fx.Graph, mode: str) -> ImportedModel:
        spec = Spec(name=self.name, file=self.reference, loc=SourceLocation(self.reference),
                    description=f"imported from {self.reference} with torch.fx")
        graph = Graph(spec.name, spec, {}, self.input_shape)
        imported = ImportedModel(graph, self.reference, traced_in=mode)
        graph.add(Node(INPUT, OPS["input"], {}, (), (), self.input_shape, MAIN, INPUT, SourceLocation(self.reference)))
        self.gm = gm
        self.paths: dict[fx.Node, str] = {}           # fx node -> the IR node holding its tensor
        self.layouts: dict[fx.Node, tuple] = {}       # ... when its axes are in another order (channels last)
        self.views: dict[fx.Node, fx.Node] = {}       # a movement no op expresses (yet): node -> its base
        self.pieces: dict[fx.Node, list] = {}         # x.chunk(2, dim=1): its candidates, until a piece is read
        self.constants = _constants(fx_graph)
        self.weights_read: dict[str, str] = {}        # weight name -> the IR node that holds it
        self.calls: Counter = Counter()                # module -> calls so far (a second one shares weights)
        self.used_paths: Counter = Counter()
        self.module_names = {name for name, _ in gm.named_modules()}
        # modules whose own weights a call reads, and whose children hold none (timm's BatchNormAct2d
        # runs F.batch_norm, BlurPool2d F.conv2d with its filter): that call's op is the module, so the
        # ops it runs beside that call are named beside it (`bn1_act`, `maxpool.1_opaque`)
        owners = {self._owner(sorted({w for a in node.all_input_nodes for w in self.constants.get(a, ())}))
                  for node in fx_graph.nodes if node.op in ("call_function", "call_method")}
        self.leaf_paths = {owner for owner in owners - {None}
                           if not any(True for child in gm.get_submodule(owner).children() for _ in child.parameters())}
        unmodelled: list[UnmodelledOp] = []
        outputs: list[str] = []
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                if self.paths:
                    unmodelled.append(self._unmodelled(node, "unsupported", "a second input"))
                self.paths[node] = INPUT
            elif node.op == "output":
                outputs = [self.paths[leaf] for leaf in _output_tensors(node.args[0]) if leaf in self.paths]
                stray = [leaf for leaf in _output_tensors(node.args[0]) if leaf in self.layouts or leaf in self.views]
                if stray:
                    unmodelled.append(self._unmodelled(node, "unsupported", "the model returns a tensor whose axes "
                                                       "are not in (C, H, W) order"))
            elif node.op == "get_attr" or node in self.constants:
                continue  # weights, and values computed from weights alone: the calls using them are mapped
            elif node.meta.get("tensor_meta") is None:
                continue  # sizes, asserts: no tensor, no cost
            elif _shape_of(node) is None and _builds_tuple(node):
                continue  # the namedtuple of outputs (InceptionOutputs): read at the output
            else:
                try:
                    self._add(node, imported)
                except Unmodelled as why:
                    status, reason = why.args if len(why.args) == 2 else ("unsupported", why.args[0])
                    unmodelled.append(self._unmodelled(node, status, reason))
                    if not self.strict:
                        self._add_opaque(node, imported, unmodelled[-1])
        imported.unmodelled = unmodelled
        if unmodelled and self.strict:
            listed = "\n  ".join(u.line() for u in unmodelled)
            raise ModelImportError(f"{len(unmodelled)} operation(s) of {self.reference} have no op kind; "
                                   f"nothing is counted as zero, so the import stops:\n  {listed}",
                                   SourceLocation(self.reference),
                                   hint="add the op to the registry (inception_analyzer/ops/), or import with --no-strict "
                                   "(strict=False) to analyse the rest with these as opaque ops of unknown MACs")
        if not outputs or outputs[0] == INPUT:
            raise ModelImportError(f"{self.reference} returns no tensor computed from its input",
                                   SourceLocation(self.reference))
        graph.output, graph.aux_outputs = outputs[0], outputs[1:]
        self._assign_roles(graph)
        _fold_borders(graph)
        imported.unreached = self._unreached(graph)
        self._scopes(imported)
        return imported

    def _unmodelled(self, node: fx.Node, status: str, reason: str) -> UnmodelledOp:
        if node.op == "call_module":
            target = type(self.model.get_submodule(node.target)).__name__
            module = node.target
        elif node.op == "output":
            target, module = "output", ""
        else:
            target = node.target if isinstance(node.target, str) else _qualified(node.target)
            target = f".{target}()" if node.op == "call_method" else target
            module = _scope(node)
        location = _source_location(node)
        sources = [a for a in node.all_input_nodes if a.op != "placeholder"]
        if location.line is None and sources:  # x.values after a sort: where its input was made
            location = _source_location(sources[0])
        return UnmodelledOp(node.name, target, module, str(location), status, reason)

    # -- one traced operation
    def _add(self, node: fx.Node, imported: ImportedModel) -> None:
        if node.op == "call_module":
            self.calls[node.target] += 1
        if _is_getitem(node) and node.args[0] in self.pieces:
            self._add_piece(node, imported)
            return
        inputs = self._tensor_inputs(node)
        movement = _movement(node)
        candidates = self._candidates(node, inputs)
        if _shape_of(node) is None:   # several tensors: x.chunk(2, dim=1) makes an op per piece read
            pieces = [(entry, values) for entry, values in candidates if entry.piece]
            if not pieces:
                raise Unmodelled("unsupported", "returns several tensors (a tuple)")
            self.pieces[node] = pieces
            return
        candidates = [(entry, values) for entry, values in candidates if not entry.piece]
        if movement is None and not candidates:
            raise Unmodelled("unsupported", f"no op kind for {self._what(node)}")
        if _is_getitem(node) and _shape_of(node.args[0]) is None:
            raise Unmodelled("unsupported", f"reads one tensor of what {node.args[0].name} returns (a tuple)")
        if any(a not in self.paths and a not in self.views for a in inputs):
            if self.strict:
                return  # downstream of an operation already listed as unmodelled: nothing to add
            # without strict, nothing is dropped: an op reading what no IR node holds is kept opaque
            raise Unmodelled("unsupported", "reads a result of an unmodelled operation that no IR node holds")
        if movement is not None:
            if candidates and not any(a in self.layouts or a in self.views for a in inputs):
                try:   # torch.flatten(x, 1) of a plain tensor: the registry's flatten, if it takes it
                    self._map(node, inputs, candidates, imported)
                    return
                except Unmodelled:
                    pass
            self._add_movement(node, imported)
            return
        self._map(node, inputs, candidates, imported)

    def _tensor_inputs(self, node: fx.Node) -> list[fx.Node]:
        """The tensors (not weights, not tuples) a call reads."""
        return [a for a in _flat_args(node) if isinstance(a, fx.Node) and a not in self.constants
                and a.op != "get_attr" and _shape_of(a) is not None]

    def _candidates(self, node: fx.Node, inputs: list[fx.Node]) -> list[tuple[_Entry, dict | None]]:
        """The op kinds this call may be, each with the call's named arguments (None for a module:
        its op reads the module), preferring merges for several tensors and the others for one."""
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            entries = [_Entry(op, ()) for op in self.module_ops.get(type(module), [])]
            if not entries:
                raise Unmodelled("unsupported", f"no op kind for the module class {type(module).__name__}")
            return [(entry, None) for entry in entries]
        if node.op == "call_method":
            entries = self.methods.get(node.target, [])
        else:
            entries = self.functions.get(id(node.target), [])
        merging = len(inputs) > 1
        entries = sorted(entries, key=lambda e: e.op.merges != merging)
        return [(entry, self._call_values(node, entry, inputs)) for entry in entries]

    def _what(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return f"the module class {type(self.gm.get_submodule(node.target)).__name__}"
        if node.op == "call_method":
            return f"the tensor method .{node.target}()"
        return f"the function {_qualified(node.target)}"

    def _call_values(self, node: fx.Node, entry: _Entry, inputs: list[fx.Node]) -> dict:
        """A call's arguments after its tensor input(s), named as the op's `torch_calls` names them;
        weights come as WeightRef (their name and shape), everything else as the literal value."""
        positional = list(node.args)
        # the tensor inputs come first (a list of them for cat); the rest are the named arguments
        if entry.op.merges and positional and isinstance(positional[0], (list, tuple)):
            rest = positional[1:]
        else:
            rest = [a for a in positional if not (isinstance(a, fx.Node) and a in inputs)]
        if entry.signature and entry.signature[0].startswith("*"):
            return {}
        values = dict(zip(entry.signature, rest))
        values.update({k: v for k, v in node.kwargs.items() if k not in ("input", "tensors", "other")})
        if len(rest) > len(entry.signature):
            values["*"] = rest[len(entry.signature):]   # more than the op names: it refuses below
        return {k: self._value(v) for k, v in values.items()}

    def _value(self, value: Any) -> Any:
        if isinstance(value, fx.Node):
            if value in self.constants or value.op == "get_attr":
                return self._weight(value)
            return _RUNTIME
        if isinstance(value, (list, tuple)) and any(isinstance(v, fx.Node) for v in value):
            return _RUNTIME
        return value

    def _weight(self, node: fx.Node) -> WeightRef:
        names = self.constants.get(node, frozenset({node.target}))
        seen = node.meta.get("tensor_meta")
        seen_shape = tuple(seen.shape) if hasattr(seen, "shape") else None
        if len(names) != 1:
            return WeightRef("", (), False, seen_shape)
        name = next(iter(names))
        tensor = self._attribute(name)
        if tensor is None:
            return WeightRef("", (), False, seen_shape)
        return WeightRef(name, tuple(tensor.shape), isinstance(tensor, nn.Parameter), seen_shape,
                         computed=node.op != "get_attr")

    def _attribute(self, name: str):
        owner, _, attribute = name.rpartition(".")
        try:
            value = getattr(self.gm.get_submodule(owner) if owner else self.gm, attribute)
        except AttributeError:
            return None
        return value if isinstance(value, torch.Tensor) else None

    def _map(self, node: fx.Node, inputs: list[fx.Node], candidates: list, imported: ImportedModel,
             extra: dict | None = None) -> None:
        """Map a call onto the first candidate op kind that takes it; else Unmodelled with the
        first candidate's reason."""
        if not candidates:
            raise Unmodelled("unsupported", f"no op kind for {self._what(node)}")
        for a in inputs:
            if a in self.views:
                raise Unmodelled("unsupported", f"reads {a.name}, a reshape of {dims_text(_shape_of(self.views[a]))} "
                                 f"to {dims_text(_shape_of(a))} per image that no op kind expresses")
        layouts = {self.layouts.get(a) for a in inputs}
        if len(layouts) > 1:
            raise Unmodelled("unsupported", "joins tensors whose axes are in different orders")
        layout = layouts.pop() if layouts else None
        failures = []
        for entry, values in candidates:
            try:
                self._map_one(node, inputs, entry.op, values if extra is None else {**values, **extra}, layout,
                              imported)
                return
            except Unmodelled as why:
                failures.append(why)
        raise failures[0]

    def _map_one(self, node: fx.Node, inputs: list[fx.Node], op: OpKind, values: dict | None, layout,
                 imported: ImportedModel) -> None:
        in_shapes = [imported.graph.node(self.paths[a]).out_shape for a in inputs]
        if len(in_shapes) < op.min_inputs or (op.max_inputs is not None and len(in_shapes) > op.max_inputs):
            raise Unmodelled("unsupported", f"{op.name} applied to {len(in_shapes)} tensors computed from the input")
        traced = _shape_of(node)
        if traced is None:
            raise Unmodelled("unsupported", "returns several tensors (a tuple)")
        if layout is not None:   # the axes are in another order: only ops that do not care, or read channels last
            if len(traced) == len(layout):
                traced = _logical(traced, layout)
            if op.reads_last_axis:
                refuse_unless(layout[-1] == 0, f"{op.name} reads the last axis, which holds no channels here")
            elif values is not None and "dim" in values:
                values = {**values, "dim": _logical_dims(values["dim"], layout)}
            elif not op.elementwise:
                raise Unmodelled("unsupported", f"{op.name} on a tensor whose axes are permuted "
                                 f"(order {_order_text(layout)})")
        elif op.reads_last_axis and any(len(s) == 3 for s in in_shapes):
            raise Unmodelled("unsupported", f"{self._what(node)} reads the last axis, which holds the width of a "
                             "feature map here (channels last it would map the channels)")
        if values is not None:   # a size read off another tensor is fine where the op reads the traced shapes
            values = {k: v for k, v in values.items() if not (v is _RUNTIME and k in op.traced_arguments)}
        if values is not None and ("*" in values or _RUNTIME in values.values()):
            what = "arguments computed at run time" if _RUNTIME in values.values() else "more arguments than it names"
            raise Unmodelled("unsupported settings", f"{self._what(node)} with {what}")
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            raw = op.from_torch_module(module, in_shapes, traced)
            path = node.target
            weights = [f"{node.target}.{name}" for name, _ in module.named_parameters()]
            if weights and weights[0] in self.weights_read:
                raise Unmodelled("shared weights", f"module {node.target} is called {self.calls[node.target]} "
                                 "times; the IR holds one set of weights per op")
        else:
            raw = op.from_torch_call(dict(values or {}), in_shapes, traced)
            read = sorted({w.name for w in (values or {}).values() if isinstance(w, WeightRef) and w.name})
            owner = self._owner(read)
            path = read[0] if op.builds_parameter and len(read) == 1 else owner
            weights = read
        try:
            args = op.bind([], raw)
            out = op.output_shape(args, list(in_shapes))
        except AnalyzerError as err:
            raise Unmodelled("unsupported settings", err.message) from None
        if tuple(out) != tuple(traced):
            raise Unmodelled("shape mismatch", f"{op.name} gives {list(out)} by our rule, the model {list(traced)}")
        shared = [w for w in weights if w in self.weights_read]
        if shared:
            raise Unmodelled("shared weights", f"{shared[0]} is read by {self.weights_read[shared[0]]} too; the IR "
                             "holds one set of weights per op")
        path = self._unique(path) if path else self._unique(_join(_scope(node), op.name), functional=True)
        try:
            imported.graph.add(Node(path, op, args, tuple(self.paths[a] for a in inputs), tuple(in_shapes), tuple(out),
                                    MAIN, path, _source_location(node)))
        except AnalyzerError as err:   # a path the IR cannot hold (a module both an op and a container of ops)
            raise Unmodelled("unsupported", err.message) from None
        if node.op == "call_module" or weights:
            imported.module_paths.add(path)
        for weight in weights:
            self.weights_read[weight] = path
        self.paths[node] = path
        if layout is not None and len(out) == len(layout):
            self.layouts[node] = layout

    def _add_piece(self, node: fx.Node, imported: ImportedModel) -> None:
        """x1, x2 = x.chunk(2, dim=1): each piece read is one op, its position the op's `index`."""
        source = node.args[0]
        inputs = self._tensor_inputs(source)
        if any(a not in self.paths and a not in self.views for a in inputs):
            return
        index = node.args[1]
        refuse_unless(isinstance(index, int), "a piece of a split picked at run time")
        self._map(node, inputs, self.pieces[source], imported, extra={"index": index})

    def _add_movement(self, node: fx.Node, imported: ImportedModel) -> None:
        """A view, reshape or permutation: what it did to the elements decides (module docstring)."""
        moved = node.meta.get("movement")
        if moved is None:
            raise Unmodelled("unsupported", "a reshape that mixes the images of a batch, or one we cannot follow")
        base, index = moved
        if base not in self.paths:
            return   # downstream of an unmodelled operation
        ir = imported.graph.node(self.paths[base])
        logical = ir.out_shape
        # which logical element of the IR tensor each element of the base tensor holds
        order = torch.arange(math.prod(logical)).view(logical)
        layout = self.layouts.get(base)
        if layout is not None:
            order = order.permute(layout)
        elements = order.reshape(-1)[index.reshape(-1).long()].view(index.shape)
        shape = tuple(index.shape)
        plain = torch.arange(math.prod(logical))
        if shape == tuple(logical) and torch.equal(elements.reshape(-1), plain):
            self.paths[node] = ir.path   # nothing moved (x.contiguous(), a permutation undone)
            return
        for permutation in itertools.permutations(range(len(logical))):
            if permutation != tuple(range(len(logical))) and shape == tuple(logical[p] for p in permutation) \
                    and torch.equal(elements, torch.arange(math.prod(logical)).view(logical).permute(permutation)):
                self.paths[node] = ir.path      # the same tensor, its axes in another order
                self.layouts[node] = permutation
                return
        found = _found_movement(elements, logical, shape)
        if found is not None:
            for op in OPS.values():
                args = op.from_movement(found, logical, shape)
                if args is None:
                    continue
                path = self._unique(_join(_scope(node), op.name), functional=True)
                args = op.bind([], args)
                imported.graph.add(Node(path, op, args, (ir.path,), (logical,), op.output_shape(args, [logical]),
                                        MAIN, path, _source_location(node)))
                self.paths[node] = path
                return
        self.views[node] = base   # a movement on the way to one (a view of 2x24x28x28): read by the next call

    def _add_opaque(self, node: fx.Node, imported: ImportedModel, why: UnmodelledOp) -> None:
        """strict=False: keep an unmodelled operation as an `opaque` op with its traced shape and
        the weights it holds or reads, each weight counted once however often it is read. One
        returning a tuple (torch.sort) makes no op; the ops reading its parts (`.values`) read
        through it."""
        shape = _shape_of(node)
        if shape is None:
            return   # a tuple (torch.sort): the ops reading its parts read through it
        what = why.target
        if len(shape) not in (1, 3) or 0 in shape:   # a tensor no IR shape holds: kept as its elements
            what = f"{why.target} ({dims_text(shape) or 'a number'} per image, as a vector)"
            shape = (max(math.prod(shape), 1),)
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            owner = node.target
            weights = {f"{node.target}.{n}": t for n, t in (*module.named_parameters(), *module.named_buffers())}
        else:
            read = sorted({name for a in _flat_args(node) if isinstance(a, fx.Node)
                           for name in self.constants.get(a, ())})
            owner = self._owner(read)
            weights = {name: self._attribute(name) for name in read}
        weights = {name: t for name, t in weights.items() if t is not None and name not in self.weights_read}
        graph = imported.graph
        if owner and not graph.is_level(owner):
            path = self._unique(owner)   # a second call of a module: `conv_1`
        else:   # no module of its own, or one that is a container of other ops already
            path, owner = self._unique(_join(_scope(node), "opaque"), functional=True), None
        params = sum(t.numel() for t in weights.values() if isinstance(t, nn.Parameter))
        buffers = sum(t.numel() for t in weights.values() if not isinstance(t, nn.Parameter))
        for name in weights:
            self.weights_read[name] = path
        inputs = self._sources(node) or [INPUT]
        op = OPS["opaque"]
        args = op.bind([list(shape), what], {"params": params, "buffers": buffers})
        in_shapes = tuple(graph.node(i).out_shape for i in inputs)
        graph.add(Node(path, op, args, tuple(inputs), in_shapes, shape, MAIN, path, _source_location(node)))
        if owner:
            imported.module_paths.add(path)
        self.paths[node] = path
        self.layouts.pop(node, None)

    def _sources(self, node: fx.Node) -> list[str]:
        """The IR nodes an fx node reads, looking through the ones that made no IR node (tuples, views)."""
        found: list[str] = []
        for arg in _flat_args(node):
            if not isinstance(arg, fx.Node) or arg in self.constants or arg.op == "get_attr":
                continue
            if arg in self.paths:
                candidates = [self.paths[arg]]
            elif arg.meta.get("tensor_meta") is not None:
                candidates = self._sources(arg)
            else:
                candidates = []
            found += [c for c in candidates if c not in found]
        return found

    @staticmethod
    def _owner(weights: list[str]) -> str | None:
        """The module whose weights a functional call reads (F.batch_norm(x, self.running_mean, ...))."""
        owners = {name.rpartition(".")[0] for name in weights}
        return owners.pop() if len(owners) == 1 else None

    def _unique(self, path: str, functional: bool = False) -> str:
        """A shared parameter-free module (ResNet's one ReLU used three times) gets one path per call.
        An op inside a module that is itself an op (timm's BatchNormAct2d runs F.batch_norm, then
        its `act` child) is named beside it (`bn_act`): a path cannot be both a layer and a level."""
        if path.partition(".")[0] == INPUT:
            raise ModelImportError(f"{self.reference} has a module named '{INPUT}' at its top level, the name the "
                                   "graph and the spec language keep for the network's input",
                                   SourceLocation(self.reference), node_path=path,
                                   hint="rename that attribute of the model to import it")
        parts = path.split(".")
        for depth in range(1, len(parts)):
            if ".".join(parts[:depth]) in self.leaf_paths:
                path = ".".join(parts[:depth]) + "_" + "_".join(parts[depth:])
                break
        while True:   # a functional op (x + y: `add`) is never named like a module (a ModuleList `add`)
            self.used_paths[path] += 1
            count = self.used_paths[path]
            candidate = path if count == 1 else f"{path}_{count - 1}"
            if not (functional and candidate in self.module_names):
                break
        self.leaf_paths.add(candidate)
        return candidate

    # -- after conversion
    @staticmethod
    def _assign_roles(graph: Graph) -> None:
        main = nx.ancestors(graph.dag, graph.output) | {graph.output}
        keep = set(main)
        for aux in graph.aux_outputs:
            keep |= nx.ancestors(graph.dag, aux) | {aux}
        graph.keep_only(keep)  # what no output uses is dead code
        for node in graph.order:
            if node.path not in main:
                node.role = AUX

    def _unreached(self, graph: Graph) -> dict[str, int]:
        """Modules whose own parameters no IR node holds: the module's op, or the parameter itself
        (a layer scale's gamma), or an opaque op that read it."""
        reached = set(graph.dag.nodes) | {name for name, path in self.weights_read.items() if path in graph.dag}
        missing = {}
        for name, module in self.model.named_modules():
            own = sum(p.numel() for key, p in module.named_parameters(recurse=False)
                      if name not in reached and _join(name, key) not in reached)
            if own:
                missing[name] = own
        return missing

    def _scopes(self, imported: ImportedModel) -> None:
        graph = imported.graph
        modules = dict(self.model.named_modules())
        for node in graph.layers():
            parts = node.path.split(".")
            for depth in range(1, len(parts)):
                prefix = ".".join(parts[:depth])
                module = modules.get(prefix)
                if module is None or prefix in graph.scopes:
                    continue
                is_container = isinstance(module, CONTAINERS)
                imported.module_types[prefix] = type(module).__name__
                if is_container:
                    imported.containers.add(prefix)
                graph.scopes[prefix] = Scope(prefix, "layers" if is_container else "template",
                                             None if is_container else type(module).__name__, node.loc)
        # a node's block: its outermost enclosing module that is not a container (as a template
        # instance is the block of a spec's node), else the node itself
        for node in graph.layers():
            parts = node.path.split(".")
            node.block = node.path
            for depth in range(1, len(parts)):
                prefix = ".".join(parts[:depth])
                if prefix in graph.scopes and (prefix not in imported.containers or _holds_layers_only(modules[prefix])):
                    node.block = prefix
                    break
        # a merge in no module (torch.cat in the model's own forward) is one block from its fork
        # on, as an unnamed merge of a spec is; outer merges come later and take their inner ones
        position = positions(graph)
        for node in graph.layers():
            if node.op.merges and node.block == node.path:
                fork = fork_of(graph, node, position)
                inside = nx.ancestors(graph.dag, node.path) - nx.ancestors(graph.dag, fork) - {fork}
                for path in inside:
                    member = graph.node(path)
                    if member.block == path or member.block in inside:
                        member.block = node.path


def _holds_layers_only(module: nn.Module) -> bool:
    """A container of a class of its own whose children are single layers (DenseNet's _Transition,
    torchvision's Conv2dNormActivation): a block, as the spec it is written to reads it; a plain
    Sequential, or one that holds blocks (RegNet's AnyStage), is looked into."""
    return type(module) not in CONTAINERS and all(next(c.children(), None) is None for c in module.children())


def _output_tensors(value: Any) -> list[fx.Node]:
    """The tensors a model returns, in order, looking into the namedtuples it builds
    (torchvision's InceptionOutputs(logits, aux_logits) is a call of the tuple class)."""
    found = []
    for leaf in tree_leaves(value):
        if not isinstance(leaf, fx.Node):
            continue
        if _builds_tuple(leaf):
            found += _output_tensors((leaf.args, leaf.kwargs))
        else:
            found.append(leaf)
    return found


def _builds_tuple(node: fx.Node) -> bool:
    return node.op == "call_function" and isinstance(node.target, type) and issubclass(node.target, tuple)


def _is_weight(value: Any) -> bool:
    return isinstance(value, fx.Node) and value.op == "get_attr"


def _flat_args(node: fx.Node) -> list:
    return [a for a in tree_leaves((node.args, node.kwargs))]


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _is_getitem(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target is operator.getitem and bool(node.args) \
        and isinstance(node.args[0], fx.Node)


def _logical(shape: tuple, layout: tuple) -> tuple:
    """The (C, H, W) shape of a tensor whose axis i holds logical axis layout[i]."""
    logical = [0] * len(layout)
    for axis, size in zip(layout, shape):
        logical[axis] = size
    return tuple(logical)


def _logical_dims(dims, layout: tuple):
    """Axes of a call on a batch in another axis order, as axes of the (N, C, H, W) batch."""
    rank = len(layout) + 1

    def one(d):
        d = d % rank if isinstance(d, int) else d
        return d if not isinstance(d, int) or d == 0 else 1 + layout[d - 1]
    return type(dims)(one(d) for d in dims) if isinstance(dims, (list, tuple)) else one(dims)


def _order_text(layout: tuple) -> str:
    return ", ".join("CHW"[axis] for axis in layout) if len(layout) == 3 else str(layout)


def _found_movement(elements, logical: tuple, shape: tuple) -> Movement | None:
    """A flatten or a permutation of whole channels, from the logical element each element holds."""
    count = math.prod(logical)
    if shape == (count,) and torch.equal(elements, torch.arange(count)):
        return Movement("flatten")
    if len(logical) == 3 and shape == tuple(logical):
        channels, grid = logical[0], logical[1] * logical[2]
        rows = elements.reshape(channels, grid)
        order = rows[:, 0] // grid
        if torch.equal(rows, order[:, None] * grid + torch.arange(grid)) \
                and sorted(order.tolist()) == list(range(channels)):
            return Movement("channels", tuple(order.tolist()))
    return None


def from_module(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224), *,
                name: str | None = None, strict: bool = True) -> Graph:
    """The graph IR of a PyTorch model, ready for analyze / review / diagram / report:
    `ia.analyze(from_module(torchvision.models.resnet50(), (3, 224, 224)))`. With strict=False,
    operations no op kind models become opaque ops and the analysis totals say they are partial."""
    return import_module(model, input_shape, name=name, strict=strict).graph


def import_module(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224), *,
                  name: str | None = None, reference: str | None = None, strict: bool = True) -> ImportedModel:
    """Like `from_module`, keeping what the spec writer needs (module classes, unreached weights).
    The model is called `name` (default: its class's name); messages name it as `reference`."""
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ModelImportError(f"input_shape is [channels, height, width], got {list(shape)}")
    label = name or type(model).__name__
    cycle = _module_cycle(model)
    if cycle is not None:
        raise ModelImportError(f"{reference or label} contains itself: its module {cycle} is one of the modules "
                               "it is inside (the module tree has a cycle; torch cannot walk it either)",
                               SourceLocation(reference or label), node_path=cycle)
    return _Importer(model, shape, reference or label, _identifier(label), strict).run()


def _module_cycle(model: nn.Module) -> str | None:
    """The path of the first module that is one of its own ancestors (self.block.parent = self), if
    any: walked without recursion, as the tree of a hostile model can be deep or cyclic."""
    stack = [(model, "", (id(model),))]
    while stack:
        module, path, ancestors = stack.pop()
        for name, child in reversed(list(module._modules.items())):
            if child is None:
                continue
            child_path = _join(path, name)
            if id(child) in ancestors:
                return child_path
            stack.append((child, child_path, ancestors + (id(child),)))
    return None


@dataclass(frozen=True)
class ModelReference:
    """`package.module:builder(literal arguments)`, read without evaluating anything."""

    module: str
    attribute: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        """What to call the imported model: the model's name where a factory is given one
        (`timm:create_model("resnet50d")`, `get_model(name="vgg16")`), else the callable's."""
        named = [a for a in self.args if isinstance(a, str)]
        named += [self.kwargs[k] for k in MODEL_NAME_KEYWORDS if isinstance(self.kwargs.get(k), str)]
        return _identifier(named[0] if named else self.attribute.rpartition(".")[2])


MODEL_NAME_KEYWORDS = ("model_name", "name", "arch")
# a longer call is refused before parsing it: Python's parser and literal_eval recurse once per
# level of nesting, and a deeply nested literal exhausts the stack
MAX_LITERAL_CHARS = 10_000


def parse_reference(reference: str) -> ModelReference:
    import ast

    module_name, sep, call = reference.partition(":")
    if not sep or not module_name or not call:
        raise ModelImportError(f"expected MODULE:CALLABLE (e.g. torchvision.models:resnet50), got '{reference}'")
    if len(call) > MAX_LITERAL_CHARS:
        raise ModelImportError(f"the call in '{reference[:60]}...' is longer than {MAX_LITERAL_CHARS:,} characters")
    try:
        expression = ast.parse(call.strip(), mode="eval").body
        if isinstance(expression, ast.Call):
            args = tuple(ast.literal_eval(a) for a in expression.args)
            if any(k.arg is None for k in expression.keywords):
                raise ValueError("**")
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expression.keywords}
            expression = expression.func
        else:
            args, kwargs = (), {}
    except SyntaxError:
        raise ModelImportError(f"cannot read '{call}' as a name or a call") from None
    except (ValueError, TypeError, RecursionError, MemoryError):
        raise ModelImportError(f"the arguments in '{call}' must be literals (numbers, strings, True/False/None, "
                               "lists, tuples, dicts with plain keys)") from None
    if not all(isinstance(part, ast.Name) or isinstance(part, ast.Attribute) for part in ast.walk(expression)
               if not isinstance(part, ast.Load)):
        raise ModelImportError(f"expected a name like resnet50 or models.resnet50 after ':', got '{call}'")
    return ModelReference(module_name, ast.unparse(expression), args, kwargs)


def load_callable(reference: str, notes: list[str] | None = None, any_callable: bool = False) -> nn.Module:
    """'package.module:builder' or 'package.module:builder(num_classes=10)' -> the model it makes.
    Arguments are Python literals only (never evaluated as code). Importing the module runs its
    code; what it names is called only if it is a model factory (a class or a function defined
    in that package), unless `any_callable`. `notes` collects what the caller should say."""
    ref = parse_reference(reference)
    top_level = ref.module.partition(".")[0]
    if top_level in sys.stdlib_module_names and not any_callable:
        raise ModelImportError(f"refusing to import from {ref.module}: it is part of Python's standard library, "
                               "not a package of models", hint=CALLABLE_HINT)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: modules in the current directory import
    target = _import(ref.module, notes)
    for part in ref.attribute.split("."):
        if not hasattr(target, part):
            raise ModelImportError(f"{ref.module} has no attribute '{ref.attribute}'")
        target = getattr(target, part)
    if isinstance(target, nn.Module):
        return target
    if not any_callable:
        _check_factory(ref, target, top_level)
    try:
        model = target(*ref.args, **ref.kwargs)
    except Exception as err:  # noqa: BLE001
        raise ModelImportError(f"{reference} failed: {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"{reference} returned {type(model).__name__}, not a torch.nn.Module")
    return model


CALLABLE_HINT = ("import calls only model factories: classes and functions defined in the package it names "
                 "(--allow-any-callable lifts this; importing a module always runs its code)")


def _import(module_name: str, notes: list[str] | None):
    """The module, importing torchvision with its work-around when that is what failed."""
    from .torchvision_compat import load_torchvision

    try:
        return importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any failure to import is the user's to see, in one line
        first = err
    torchvision = load_torchvision()
    if torchvision.module is not None and torchvision.note is not None:
        if notes is not None:
            notes.append(torchvision.note)
        try:
            return importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001
            first = err
    raise ModelImportError(f"cannot import {module_name}: {type(first).__name__}: {_first_line(first)}")


def _check_factory(ref: ModelReference, target, top_level: str) -> None:
    """Refuse to call what is not a model factory of the package: a class that is no
    torch.nn.Module, or a function defined elsewhere (os.system re-exported, builtins)."""
    import inspect

    what = f"{ref.module}:{ref.attribute}"
    if inspect.isclass(target):
        if not issubclass(target, nn.Module):
            raise ModelImportError(f"refusing to call {what}: a class that is not a torch.nn.Module",
                                   hint=CALLABLE_HINT)
        return
    if not callable(target):
        raise ModelImportError(f"{what} is a {type(target).__name__}, neither a model nor a model factory")
    defined_in = getattr(target, "__module__", None) or "?"
    if defined_in.partition(".")[0] != top_level or not (inspect.isfunction(target) or inspect.ismethod(target)):
        raise ModelImportError(f"refusing to call {what}: it is defined in {defined_in}, not a function or class "
                               f"of {top_level}", hint=CALLABLE_HINT)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_")
    return name or "imported"


def import_to_spec(reference: str, input_shape: tuple[int, int, int], strict: bool = True, name: str | None = None,
                   any_callable: bool = False) -> tuple[ImportedModel, str]:
    """`inception-analyzer import`: the model `reference` names, traced, written as spec text,
    and checked: the text expands to the imported IR (every op's path, arguments and shape).
    The spec is called `name`, else after the model (ModelReference.model_name)."""
    notes: list[str] = []
    model = load_callable(reference, notes, any_callable)
    imported = import_module(model, input_shape, name=name or parse_reference(reference).model_name,
                             reference=reference, strict=strict)
    imported.notes = notes + imported.notes
    return imported, written_spec(imported)


def written_spec(imported: ImportedModel) -> str:
    """The spec text of an import, checked: loaded back and expanded, it must give the import's graph
    op for op (the same ops, arguments and shapes reading the same tensors, every weight on its
    path), or the import fails rather than write a wrong spec."""
    from .graph import build_graph
    from .spec import load_spec_text
    from .spec_writer import write_spec

    text = write_spec(imported)
    written = build_graph(load_spec_text(text, f"<spec written for {imported.reference}>"))
    mismatched = _first_difference(imported.graph, written)
    if mismatched:  # a bug of ours, never the user's: say so plainly rather than write a wrong spec
        raise ModelImportError(f"the written spec does not reproduce the import at {mismatched}; "
                               "please report this with the model", SourceLocation(imported.reference))
    return text


def _first_difference(imported: Graph, written: Graph) -> str | None:
    """Where the written spec's graph differs from the import: the first op that has no twin in it
    (the same op kind, arguments, shapes and role, reading twins of the same tensors in the same
    order), an op with weights on another path (the state_dict would not load), or the outputs."""
    ours, theirs = _signatures(imported), _signatures(written)
    unmatched = Counter(theirs.values())
    for node in imported.order:
        if unmatched[ours[node.path]] == 0:
            return node.path
        unmatched[ours[node.path]] -= 1
    paths = {n.path: n for n in written.layers()}
    for node in imported.layers():
        if (node.op.weighted or node.op.params(node.args, list(node.in_shapes), node.out_shape)) and \
                (node.path not in paths or theirs[node.path] != ours[node.path]):
            return node.path
    # auxiliary heads come in the order of their rows (GoogLeNet returns aux2 before aux1)
    if ours[imported.output] != theirs[written.output] or \
            sorted(ours[a] for a in imported.aux_outputs) != sorted(theirs[a] for a in written.aux_outputs):
        return "the model's outputs"
    if sum(unmatched.values()):
        return "the number of ops"
    return None


def _signatures(graph: Graph) -> dict[str, int]:
    """Each node's signature: its op, arguments, shapes and role, and its inputs' signatures in order."""
    signature: dict[str, int] = {}
    for node in graph.order:
        signature[node.path] = hash((node.kind, repr(sorted(node.args.items())), tuple(node.out_shape), node.role,
                                     tuple(signature[i] for i in node.inputs)))
    return signature
