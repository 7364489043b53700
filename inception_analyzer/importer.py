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
from .ops import OPS, Category, OpKind, Unmodelled
from .spec.schema import Spec

# Modules the trace looks into rather than mapping: containers, and any class no op kind names
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# Calls that ask about shapes or assert; they make no tensor and cost nothing
SHAPE_QUERIES = {"size", "dim", "numel", "shape", "_assert", "getattr"}


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


_Entry = tuple[OpKind, tuple[str, ...]]


def _call_table() -> tuple[dict[int, list[_Entry]], dict[str, list[_Entry]]]:
    """The registry's torch functions (by object identity) and tensor methods (by name). One
    function may stand for two ops: `x * 0.17` is a scale, `x * gate` a merge (mul)."""
    functions: dict[int, list[_Entry]] = {}
    methods: dict[str, list[_Entry]] = {}
    for op in OPS.values():
        for name, signature in op.torch_calls.items():
            if name.startswith("."):
                methods.setdefault(name[1:], []).append((op, signature))
            else:
                target = _resolve(name)
                if target is not None:
                    functions.setdefault(id(target), []).append((op, signature))
    return functions, methods


def _module_table() -> dict[type, OpKind]:
    table = {}
    for op in OPS.values():
        for class_name in op.torch_modules:
            table[getattr(nn, class_name)] = op
    return table


class _Tracer(fx.Tracer):
    """Leaves are exactly the torch.nn classes the registry maps; everything else, subclasses
    included (timm's BatchNormAct2d is a BatchNorm2d that also activates), is traced through."""

    def __init__(self, leaf_types: set[type]):
        super().__init__()
        self.leaf_types = leaf_types
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in self.leaf_types


def _source_location(node: fx.Node) -> SourceLocation:
    """The line of model code that made this node: the innermost frame outside torch, else (a
    call inside one of torch's own modules, nn.Hardswish's F.hardswish) the innermost frame
    outside torch.fx."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
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
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    return next(reversed(stack.values()))[0]


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
    def trace(self, training: bool) -> tuple[fx.GraphModule, fx.Graph]:
        model = copy.deepcopy(self.model) if training else self.model
        was_training = model.training
        model.train(training)
        try:
            tracer = _Tracer(set(self.module_ops))
            try:
                graph = tracer.trace(model)
            except Exception as err:  # noqa: BLE001 - fx's own errors name the Python construct
                raise ModelImportError(f"torch.fx cannot trace {self.reference}: {type(err).__name__}: "
                                       f"{str(err).splitlines()[0] if str(err) else ''}",
                                       SourceLocation(self.reference),
                                       hint="data-dependent Python control flow cannot be traced; "
                                       "see torch.fx's limitations") from None
            module = fx.GraphModule(model, graph)
            # training-mode batch norm needs two values per channel; no gradients, no side effects
            # on the caller's model (the training trace runs on a copy)
            batch = 2 if training else 1
            try:
                # ShapeProp prints the model's traceback itself before raising: keep it off the terminal
                with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                    ShapeProp(module).propagate(torch.zeros(batch, *self.input_shape))
            except Exception as err:  # noqa: BLE001
                cause = err.__cause__ or err  # ShapeProp wraps the model's own error
                raise ModelImportError(f"{self.reference} does not run on a {list(self.input_shape)} input: "
                                       f"{type(cause).__name__}: {_first_line(cause)}",
                                       SourceLocation(self.reference), hint="give the input size it expects "
                                       "(--input-size)") from None
            return module, graph
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
    def _convert(self, gm: fx.GraphModule, fx_graph: fx.Graph, mode: str) -> ImportedModel:
        spec = Spec(name=self.name, file=self.reference, loc=SourceLocation(self.reference),
                    description=f"imported from {self.reference} with torch.fx")
        graph = Graph(spec.name, spec, {}, self.input_shape)
        imported = ImportedModel(graph, self.reference, traced_in=mode)
        graph.add(Node(INPUT, OPS["input"], {}, (), (), self.input_shape, MAIN, INPUT, SourceLocation(self.reference)))
        self.paths: dict[fx.Node, str] = {}
        self.used_paths: Counter = Counter()
        self.leaf_paths: set[str] = set()
        unmodelled: list[UnmodelledOp] = []
        called: Counter = Counter()
        outputs: list[str] = []
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                if self.paths:
                    unmodelled.append(self._unmodelled(node, "unsupported", "a second input"))
                self.paths[node] = INPUT
            elif node.op == "output":
                outputs = [self.paths[leaf] for leaf in _output_tensors(node.args[0]) if leaf in self.paths]
            elif node.op == "get_attr":
                continue  # weights read directly: the call using them is what gets mapped
            elif node.meta.get("tensor_meta") is None:
                continue  # sizes, asserts: no tensor, no cost
            elif _shape_of(node) is None and _builds_tuple(node):
                continue  # the namedtuple of outputs (InceptionOutputs): read at the output
            else:
                try:
                    if _shape_of(node) is None:
                        raise Unmodelled("unsupported", "returns several tensors (a tuple)")
                    self._add(gm, node, imported, called)
                except Unmodelled as why:
                    status, reason = why.args if len(why.args) == 2 else ("unsupported", why.args[0])
                    unmodelled.append(self._unmodelled(node, status, reason))
                    if not self.strict:
                        self._add_opaque(gm, node, imported, unmodelled[-1])
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
        imported.unreached = self._unreached(graph)
        self._scopes(imported)
        return imported

    def _unmodelled(self, node: fx.Node, status: str, reason: str) -> UnmodelledOp:
        if node.op == "call_module":
            target = type(self.model.get_submodule(node.target)).__name__
            module = node.target
        else:
            target = node.target if isinstance(node.target, str) else _qualified(node.target)
            target = f".{target}()" if node.op == "call_method" else target
            module = _scope(node)
        location = _source_location(node)
        sources = [a for a in node.all_input_nodes if a.op != "placeholder"]
        if location.line is None and sources:  # x.values after a sort: where its input was made
            location = _source_location(sources[0])
        return UnmodelledOp(node.name, target, module, str(location), status, reason)

    def _add(self, gm: fx.GraphModule, node: fx.Node, imported: ImportedModel, called: Counter) -> None:
        tensor_inputs = [a for a in _flat_args(node)
                         if isinstance(a, fx.Node) and not _is_weight(a) and _shape_of(a) is not None]
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            op = self.module_ops.get(type(module))
            if op is None:
                raise Unmodelled("unsupported", f"no op kind for the module class {type(module).__name__}")
            called[node.target] += 1
            if called[node.target] > 1 and any(True for _ in module.parameters()):
                raise Unmodelled("shared weights", f"module {node.target} is called {called[node.target]} times; "
                                 "the IR holds one set of weights per op")
            in_shapes = [_shape_of(a) for a in tensor_inputs]
            raw = op.from_torch_module(module, in_shapes, _shape_of(node))
            path = self._unique(node.target)
            imported.module_paths.add(path)
        else:
            op, values = self._match_call(node, tensor_inputs)
            in_shapes = [_shape_of(a) for a in tensor_inputs]
            raw = op.from_torch_call(values, in_shapes, _shape_of(node))
            owner = self._owner(node)
            path = self._unique(owner or _join(_scope(node), op.name))
            if owner:  # F.batch_norm(x, self.running_mean, ...): the op is that module, for the state_dict
                imported.module_paths.add(path)
        if len(tensor_inputs) != 1 and not op.merges:
            raise Unmodelled("unsupported", f"{op.name} applied to {len(tensor_inputs)} tensors")
        if any(a not in self.paths for a in tensor_inputs):
            return  # downstream of an operation already listed as unmodelled: nothing to add
        try:
            args = op.bind([], raw)
            inputs = tuple(self.paths[a] for a in tensor_inputs)
            in_shapes = tuple(imported.graph.node(i).out_shape for i in inputs)
            out = op.output_shape(args, list(in_shapes))
        except AnalyzerError as err:
            raise Unmodelled("unsupported settings", str(err)) from None
        traced = _shape_of(node)
        if tuple(out) != traced:
            raise Unmodelled("shape mismatch", f"{op.name} gives {list(out)} by our rule, the model {list(traced)}")
        graph = imported.graph
        graph.add(Node(path, op, args, inputs, in_shapes, tuple(out), MAIN, path, _source_location(node)))
        self.paths[node] = path

    def _add_opaque(self, gm: fx.GraphModule, node: fx.Node, imported: ImportedModel, why: UnmodelledOp) -> None:
        """strict=False: keep an unmodelled operation as an `opaque` op with its traced shape and
        the weights it holds or reads. One returning a tuple (torch.sort) makes no op; the ops
        reading its parts (`.values`) read through it."""
        shape = _shape_of(node)
        if shape is None:
            return
        weights = []
        if node.op == "call_module":
            weights = [gm.get_submodule(node.target)]
            path = self._unique(node.target)
        else:
            owner = self._owner(node)
            path = self._unique(owner or _join(_scope(node), "opaque"))
            weights = [gm.get_submodule(owner)] if owner else []
        if why.status == "shared weights":  # counted at the module's first call
            weights = []
        params = sum(p.numel() for module in weights for p in module.parameters())
        buffers = sum(b.numel() for module in weights for b in module.buffers())
        inputs = self._sources(node) or [INPUT]
        op = OPS["opaque"]
        args = op.bind([list(shape), why.target], {"params": params, "buffers": buffers})
        graph = imported.graph
        in_shapes = tuple(graph.node(i).out_shape for i in inputs)
        graph.add(Node(path, op, args, tuple(inputs), in_shapes, shape, MAIN, path, _source_location(node)))
        if node.op == "call_module" or owner:
            imported.module_paths.add(path)
        self.paths[node] = path

    def _sources(self, node: fx.Node) -> list[str]:
        """The IR nodes an fx node reads, looking through the ones that made no IR node (tuples)."""
        found: list[str] = []
        for arg in _flat_args(node):
            if not isinstance(arg, fx.Node) or _is_weight(arg):
                continue
            if arg in self.paths:
                candidates = [self.paths[arg]]
            elif arg.meta.get("tensor_meta") is not None:
                candidates = self._sources(arg)
            else:
                candidates = []
            found += [c for c in candidates if c not in found]
        return found

    def _match_call(self, node: fx.Node, tensor_inputs: list) -> tuple[OpKind, dict]:
        if node.op == "call_method":
            entries = self.methods.get(node.target)
            what = f"the tensor method .{node.target}()"
        else:
            entries = self.functions.get(id(node.target))
            what = f"the function {_qualified(node.target)}"
        if not entries:
            raise Unmodelled("unsupported", f"no op kind for {what}")
        merging = len(tensor_inputs) > 1
        op, signature = next((e for e in entries if e[0].merges == merging), entries[0])
        positional = [a for a in node.args]
        # the tensor inputs come first (a list of them for cat); the rest are the named arguments
        if op.merges and positional and isinstance(positional[0], (list, tuple)):
            rest = positional[1:]
        else:
            rest = [a for a in positional if not (isinstance(a, fx.Node) and a in tensor_inputs)]
        if signature and signature[0].startswith("*"):  # x.view(n, -1): the shape is read from the trace
            return op, {}
        values = dict(zip(signature, rest))
        values.update({k: v for k, v in node.kwargs.items() if k not in ("input", "tensors", "other")})
        if len(rest) > len(signature) or any(isinstance(v, fx.Node) for v in values.values()
                                              if not _is_weight(v)):
            raise Unmodelled("unsupported settings", f"{what} with arguments computed at run time")
        return op, {k: (None if v is None else ("weight" if _is_weight(v) else v)) for k, v in values.items()}

    def _owner(self, node: fx.Node) -> str | None:
        """The module whose weights a functional call reads (F.batch_norm(x, self.running_mean, ...))."""
        owners = {a.target.rpartition(".")[0] for a in _flat_args(node) if _is_weight(a)}
        return owners.pop() if len(owners) == 1 else None

    def _unique(self, path: str) -> str:
        """A shared parameter-free module (ResNet's one ReLU used three times) gets one path per call.
        An op inside a module that is itself an op (timm's BatchNormAct2d runs F.batch_norm, then
        its `act` child) is named beside it (`bn_act`): a path cannot be both a layer and a level."""
        parts = path.split(".")
        for depth in range(1, len(parts)):
            if ".".join(parts[:depth]) in self.leaf_paths:
                path = ".".join(parts[:depth]) + "_" + "_".join(parts[depth:])
                break
        self.used_paths[path] += 1
        count = self.used_paths[path]
        path = path if count == 1 else f"{path}_{count - 1}"
        self.leaf_paths.add(path)
        return path

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
        reached = set(graph.dag.nodes)
        missing = {}
        for name, module in self.model.named_modules():
            own = sum(p.numel() for p in module.parameters(recurse=False))
            if own and name not in reached:
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
                if prefix in graph.scopes and prefix not in imported.containers:
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
    return _Importer(model, shape, reference or label, _identifier(label), strict).run()


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
    from .graph import build_graph
    from .spec import load_spec_text
    from .spec_writer import write_spec

    notes: list[str] = []
    model = load_callable(reference, notes, any_callable)
    imported = import_module(model, input_shape, name=name or parse_reference(reference).model_name,
                             reference=reference, strict=strict)
    imported.notes = notes + imported.notes
    text = write_spec(imported)
    written = build_graph(load_spec_text(text, f"<spec written for {reference}>"))
    mismatched = _first_difference(imported.graph, written)
    if mismatched:  # a bug of ours, never the user's: say so plainly rather than write a wrong spec
        raise ModelImportError(f"the written spec does not reproduce the import at {mismatched}; "
                               "please report this with the model", SourceLocation(reference))
    return imported, text


def _first_difference(imported: Graph, written: Graph) -> str | None:
    """The first op with weights whose path, arguments or shapes differ, or the totals."""
    ours = {n.path: n for n in written.layers()}
    for node in imported.layers():
        if not (node.op.weighted or node.op.category is Category.BATCH_NORM):
            continue
        other = ours.get(node.path)
        if other is None or other.kind != node.kind or other.args != node.args or other.out_shape != node.out_shape \
                or other.in_shapes != node.in_shapes:
            return node.path
    if sum(1 for _ in imported.layers()) != sum(1 for _ in written.layers()):
        return "the number of ops"
    return None
