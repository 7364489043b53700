"""Graph IR -> torch.nn.Module, through the op registry; no per-architecture code.

The module tree mirrors the IR's paths: every template instance and named block becomes a
container module, every leaf op the module its op kind makes, attached under its path's last
name. So `Mixed_5b.branch5x5_2.conv` is a real attribute path and torchvision's state_dict loads
with strict=True into the models of the torchvision-compatible specs.

The forward pass is Python source generated from the IR (`model.code`, one line per op, each
tensor dropped after its last reader) and compiled per network, so every network has a forward
of its own, as every torchvision architecture has a class of its own. Auxiliary heads run only in
training mode, where the result is `SpecOutputs(logits, aux_logits)` as torchvision's
InceptionOutputs; in eval mode the result is the logits tensor alone.
"""
from __future__ import annotations

import io
import itertools
import keyword
import linecache
import re
import types
import warnings
import weakref
from collections import namedtuple
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .dtypes import get_dtype
from .errors import AnalyzerError, SourceLocation
from .analysis.cost import Totals
from .dtypes import FP32
from .graph import AUX, INPUT, Graph, Scope, runs_in_place
from .numbers import shape_text
from .ops import OPS
from .pipeline import ModelAnalysis, Request, analyze
from .spec import Spec

SpecOutputs = namedtuple("SpecOutputs", ["logits", "aux_logits"])
SpecOutputs.__doc__ = ("Training-mode output of a model with auxiliary heads: `logits` of the main "
                       "classifier, `aux_logits` the head's output (a tuple, in spec order, when "
                       "there are several heads).")


class BuildError(AnalyzerError):
    kind = "build error"


class SpecBlock(nn.Module):
    """A container for one level of the module tree (a template instance or a named block), or of
    the layers a dotted name puts in it (`convs.0`, `convs.1`: a ModuleList's children)."""

    def __init__(self, scope: Scope | None, kind: str = "model"):
        super().__init__()
        self.spec_kind = scope.kind if scope else kind
        self.template = scope.template if scope else None

    def extra_repr(self) -> str:
        return self.template or self.spec_kind


_FORWARD_NUMBERS = itertools.count(1)


class SpecNetwork(SpecBlock):
    """The built network: the module tree plus a forward pass generated for it (`code`)."""

    def __init__(self, graph: Graph):
        super().__init__(None)
        self.spec_name = graph.name
        self.input_shape = tuple(graph.input_shape)
        self._attach_modules(graph)
        self.code = forward_source(graph)
        self._install_forward()

    def _attach_modules(self, graph: Graph) -> None:
        containers: dict[str, nn.Module] = {"": self}

        def container(path: str) -> nn.Module:
            if path not in containers:
                parent, _, name = path.rpartition(".")
                block = SpecBlock(graph.scopes.get(path), "container")
                container(parent).add_module(name, block)
                containers[path] = block
            return containers[path]

        for node in graph.layers():
            if not (node.op.builds_module or node.op.builds_parameter):
                continue
            parent, _, name = node.path.rpartition(".")
            made = node.op.make_module(module_arguments(graph, node), list(node.in_shapes), node.out_shape)
            if node.op.builds_parameter:   # a bare learnable tensor of the enclosing module (a layer scale)
                container(parent).register_parameter(name, made)
            else:
                container(parent).add_module(name, made)

    def _install_forward(self) -> None:
        """Compile `code` and bind it as this instance's `forward`.

        Each network gets a code object of its own, as each torchvision architecture has a class of
        its own. torch.compile keys its compiled graphs on the forward's code object: with one
        forward shared by every built network, compiling a second network counted as a
        recompilation of the first (after which dynamo compiles for dynamic shapes, measured 37%
        slower on GoogLeNet, and past its recompile limit falls back to eager). Linecache holds the
        source, so tracebacks and dynamo's messages show the generated lines."""
        # dynamo also remembers shapes per (file name, line, function name): a name of its own too
        filename = f"<forward of {self.spec_name} #{next(_FORWARD_NUMBERS)}>"
        linecache.cache[filename] = (len(self.code), None, self.code.splitlines(keepends=True), filename)
        weakref.finalize(self, linecache.cache.pop, filename, None)   # the lines live as long as the model
        namespace = forward_namespace()
        exec(compile(self.code, filename, "exec"), namespace)  # noqa: S102 - our own generated source
        # an instance attribute: nn.Module.__call__ looks `forward` up on the instance first
        object.__setattr__(self, "forward", types.MethodType(namespace["forward"], self))

    def forward(self, x: torch.Tensor):
        # reached only through the class, as torch.fx's tracer does: run the instance's own
        return self.__dict__["forward"](x)

    def __getstate__(self) -> dict:
        # the generated forward is not picklable; __setstate__ generates it again
        return {key: value for key, value in super().__getstate__().items() if key != "forward"}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._install_forward()

    def extra_repr(self) -> str:
        return f"spec={self.spec_name}, input={list(self.input_shape)}"


def forward_namespace() -> dict[str, Any]:
    """What the generated forward calls besides the network's modules: the registry's merges
    (`combine_concat`...) and parameter ops (`apply_...`), and SpecOutputs."""
    return {"SpecOutputs": SpecOutputs, **{f"combine_{op.name}": op.combine for op in OPS.values()},
            **{f"apply_{op.name}": op.apply for op in OPS.values() if op.builds_parameter}}


def module_arguments(graph: Graph, node) -> dict:
    """A node's arguments for its torch module. An activation's `inplace` is the builder's decision,
    whatever the spec wrote: in place exactly when that cannot overwrite a tensor anything else
    needs (graph.runs_in_place, which the memory analysis reads too). The figures and the weights
    are the same either way."""
    if node.op.in_place_capable:
        return {**node.args, "inplace": runs_in_place(graph, node)}
    return node.args


def forward_source(graph: Graph) -> str:
    """The Python source of a network's forward pass: one line per op in the IR's order, leaf
    modules called by their attribute path, merges through the registry's `combine`, parameters
    (a layer scale) through its `apply`, and each
    tensor dropped after its last reader (as torch.fx's generated code does). Auxiliary heads run
    only in training, where the result is `SpecOutputs(logits, aux_logits)`."""
    variables = _variable_names(graph)
    main = _forward_lines(graph, variables, with_aux=False)
    if not graph.aux_outputs:
        return "\n".join(["def forward(self, x):", *main]) + "\n"
    train = _forward_lines(graph, variables, with_aux=True)
    return "\n".join(["def forward(self, x):", "    if not self.training:",
                      *("    " + line for line in main), *train]) + "\n"


def _variable_names(graph: Graph) -> dict[str, str]:
    """A Python name per node, from its path; never one the generated code itself uses."""
    names = {INPUT: "x"}
    taken = {"x", "self", "SpecOutputs", "getattr"}
    for node in graph.layers():
        base = re.sub(r"\W", "_", node.path)
        if not base.isidentifier() or keyword.iskeyword(base) or base.startswith(("combine_", "apply_")):
            base = f"_{base}"
        name, number = base, 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        names[node.path] = name
    return names


def _module_expression(path: str, parameter: bool = False) -> str:
    """A module by its path, read through each container's `_modules` dict: what nn.Module's
    `__getattr__` finds there, without that Python function's call. Through attribute paths
    (`self.inception3a.branch2` ...) a GoogLeNet forward called it 1,075 times (401 now, the
    modules' own reads of their weights; torchvision's 572), at about 1.3 us a call on the 2-core
    development machine: built models ran 3 to 8% slower than torchvision's at small inputs on
    it, and 3 to 9% at batch 1 on an H200 (docs/benchmarks.md). A module replaced after building
    (setattr) is still the one called.
    A `parameter` (a layer scale's) is read from its container's `_parameters`."""
    *containers, last = path.split(".")
    return "self" + "".join(f"._modules[{part!r}]" for part in containers) + \
        f"._{'parameters' if parameter else 'modules'}[{last!r}]"


def _forward_lines(graph: Graph, variables: dict[str, str], with_aux: bool) -> list[str]:
    nodes = [node for node in graph.layers() if with_aux or node.role != AUX]
    outputs = [graph.output, *(graph.aux_outputs if with_aux else ())]
    last_read = {source: index for index, node in enumerate(nodes) for source in node.inputs}
    lines = []
    for index, node in enumerate(nodes):
        arguments = [variables[source] for source in node.inputs]
        if node.op.builds_module:
            call = f"{_module_expression(node.path)}({arguments[0]})"
        elif node.op.builds_parameter:
            call = f"apply_{node.op.name}({_module_expression(node.path, parameter=True)}, {arguments[0]})"
        else:
            call = f"combine_{node.op.name}([{', '.join(arguments)}])"
        lines.append(f"    {variables[node.path]} = {call}")
        done = sorted({variables[s] for s in node.inputs if last_read[s] == index and s not in outputs})
        if done:
            lines.append(f"    {' = '.join(done)} = None")
    if len(outputs) == 1:
        lines.append(f"    return {variables[graph.output]}")
    else:
        aux = [variables[path] for path in outputs[1:]]
        aux_text = aux[0] if len(aux) == 1 else f"({', '.join(aux)},)"
        lines.append(f"    return SpecOutputs({variables[graph.output]}, {aux_text})")
    return lines


def resolve_device(name: str | torch.device | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' -> a device that exists here, or a BuildError saying why not."""
    if name is None:
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise BuildError(f"unknown device '{name}' (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BuildError(f"device '{name}' asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BuildError(f"device '{name}' does not exist: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif device.type not in ("cpu", "meta"):
        raise BuildError(f"device type '{device.type}' is not supported (use cpu or cuda)")
    return device


def resolve_dtype(name: str | torch.dtype | None) -> torch.dtype:
    if name is None:
        return torch.float32
    if isinstance(name, torch.dtype):
        return name
    # tf32 stores fp32: TF32 is a mode of the tensor cores' arithmetic, not a storage type
    return getattr(torch, get_dtype(name).torch_name)


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory the device can still give us: CUDA's free memory, or the OS's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def check_fits(graph: Graph, totals: Totals, device: torch.device, dtype: torch.dtype, images: int = 0) -> int:
    """Refuse, with the figures, a model whose weights (and the activations of an inference pass
    on `images` images) cannot fit the device; return the bytes needed."""
    element = torch.tensor([], dtype=dtype).element_size()
    weights = totals.params * element + totals.buffers * 8  # BN's num_batches_tracked is int64; bound
    activations = totals.peak_activation_bytes // FP32.bytes * element * images  # the analysis counts fp32
    needed = weights + activations
    free = free_memory_bytes(device)
    if free is not None and needed > free:
        what = f"{totals.params:,} params" + (f" and one pass on {images} image(s)" if images else "")
        raise BuildError(f"{graph.name} needs {needed / 2**30:.2f} GiB for {what} at "
                         f"{str(dtype).removeprefix('torch.')} but {device} has {free / 2**30:.2f} GiB free; "
                         "refusing to allocate", SourceLocation(graph.spec.file))
    return needed


def build_model(spec: str | Path | Spec | Graph | ModelAnalysis, overrides: dict[str, Any] | None = None,
                input_size: int | None = None, *, device: str | torch.device | None = None,
                dtype: str | torch.dtype | None = None, channels_last: bool = False,
                **argument_overrides: Any) -> SpecNetwork:
    """Build the torch model of a spec: `build_model("specs/inception_v3.yaml", aux_logits=False)`.

    `spec` is a spec file or a bundled spec's name, a loaded Spec, an expanded Graph or an
    analysis. Spec arguments come as a dict or as keywords (spec arguments named device, dtype or
    channels_last go through `overrides`). The weights are allocated directly on `device`, after
    checking from the analysis that they fit there.
    """
    if isinstance(spec, ModelAnalysis):
        analysis = spec
        if overrides or argument_overrides or input_size:
            raise BuildError("overrides apply to a spec, not to an already analysed model")
    elif isinstance(spec, Graph):
        if overrides or argument_overrides or input_size:
            raise BuildError("overrides apply to a spec, not to an already expanded graph")
        analysis = analyze(Request(spec))
    else:
        analysis = analyze(Request(spec, {**(overrides or {}), **argument_overrides}, input_size))
    graph = analysis.graph
    target, precision = resolve_device(device), resolve_dtype(dtype)
    check_fits(graph, analysis.totals, target, precision)
    try:
        with target:
            model = SpecNetwork(graph)
    except (ValueError, RuntimeError) as err:  # torch refusing an argument the registry let through
        raise BuildError(f"torch could not build the model: {err}", SourceLocation(graph.spec.file)) from None
    model = model.to(dtype=precision)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_and_check(analysis: ModelAnalysis, *, device: str = "cpu", dtype: str = "fp32",
                    channels_last: bool = False) -> tuple[SpecNetwork, str]:
    """Build, run one image through the model, and compare it with the analysis.

    Returns the model (in eval mode) and the line to print. A model whose parameter count or
    output shape disagrees with the analysis is a BuildError: that would be a bug in the
    registry, and no user should get such a model silently.
    """
    graph, totals = analysis.graph, analysis.totals
    precision = resolve_dtype(dtype)
    check_fits(graph, totals, resolve_device(device), precision, images=1)  # the check pass below
    model = build_model(analysis, device=device, dtype=precision, channels_last=channels_last).eval()
    target, _ = placement(model)
    params = sum(p.numel() for p in model.parameters())
    image = torch.zeros(1, *graph.input_shape, device=target, dtype=precision)
    if channels_last:
        image = image.to(memory_format=torch.channels_last)
    with torch.no_grad():
        logits = model(image)
    expected = tuple(graph.node(graph.output).out_shape)
    if params != totals.params or tuple(logits.shape[1:]) != expected:
        raise BuildError(f"built model disagrees with the analysis: {params:,} params and output "
                         f"{tuple(logits.shape[1:])} vs {totals.params:,} and {expected}")
    line = (f"built {graph.name}: {params:,} params (= analysis), output {list(logits.shape)} for one "
            f"{shape_text(list(graph.input_shape))} image on {target}, {str(precision)[6:]}"
            + (", channels_last" if channels_last else ""))
    return model, line


def placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's tensors are and their dtype; a model without any (a spec of pooling and
    activations only) is on the CPU in fp32."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return (tensor.device, tensor.dtype) if tensor is not None else (torch.device("cpu"), torch.float32)


EXPORT_FORMATS = ("onnx", "torchscript")


def export_model(model: SpecNetwork, fmt: str, path: str | Path, protected: tuple = ()) -> None:
    """Write the model as ONNX or TorchScript, atomically (a temp file renamed into place)."""
    from .output import OutputError, write_atomically_with

    if fmt not in EXPORT_FORMATS:
        raise BuildError(f"unknown export format '{fmt}' (use {', '.join(EXPORT_FORMATS)})")
    device, dtype = placement(model)
    if device.type == "meta":
        raise BuildError("a model on the meta device has shapes but no weights: export it from cpu or cuda")
    image = torch.zeros(1, *model.input_shape, device=device, dtype=dtype)
    model = model.eval()
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 - torch.onnx needs it; say so plainly when absent
            import onnxscript  # noqa: F401
        except ImportError:
            raise BuildError("ONNX export needs the optional packages onnx and onnxscript: "
                             "pip install 'inception-analyzer[onnx]'") from None

        def write(temp: str) -> None:
            with warnings.catch_warnings():  # torch's exporter warns about its own internals
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (image,), temp, input_names=["image"], output_names=["logits"],
                                  dynamo=True, external_data=False, verbose=False)
    else:
        def write(temp: str) -> None:
            with torch.no_grad():
                traced = torch.jit.trace(model, image)
            # saved into memory first: TorchScript's own writer aborts the process (a C++
            # exception) when the disk is full; Python's write raises an OSError instead
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            Path(temp).write_bytes(buffer.getvalue())
    try:
        write_atomically_with(path, write, protected)
    except OutputError:
        raise
    except Exception as err:  # noqa: BLE001 - an exporter failure is reported, not a traceback
        raise BuildError(f"{fmt} export failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
