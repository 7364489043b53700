"""Command line: parse arguments, call the library, print or write. Nothing else lives here.

Every error the user can cause is an AnalyzerError: printed as one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import yaml

from . import __version__, analyze
from .errors import AnalyzerError, OverrideError
from .output import write_atomically
from .spec.yaml_source import parse_scalar
from .analysis.findings import SEVERITIES, severity_at_least
from . import bench_options
from .render import compare as compare_command, diagram as diagram_command, report as report_command
from .render.estimate import add_estimate_arguments, render_estimate
from .render.review import REVIEW_FORMATS, render_review
from .render.tables import DEPTHS, FORMATS, render

PROG = "inception-analyzer"


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as a YAML scalar (10, 0.5, false, name)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise OverrideError(f"--set takes key=value (e.g. aux_logits=false), got '{text}'")
    try:
        value = parse_scalar(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise OverrideError(f"cannot read the value of --set {text}") from None
    if isinstance(value, (dict, list)):
        raise OverrideError(f"--set {key} takes a single value, got {raw!r}")
    return key.strip(), value


def _add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="path to a spec YAML file (see specs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec argument, e.g. --set aux_logits=false (repeatable)")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input of N x N pixels")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Exact cost analysis and design review of "
                                     "CNN architectures written as YAML specs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    analyze_cmd = commands.add_parser("analyze", help="per-layer shapes, params, MACs and activations",
                                      description="Per-layer and total cost of a spec, per image.")
    _add_spec_arguments(analyze_cmd)
    analyze_cmd.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    analyze_cmd.add_argument("--depth", choices=DEPTHS, default="layer",
                             help="rows per leaf layer, per block (module instance) or per stage (grid size)")
    analyze_cmd.add_argument("--rf", action="store_true",
                             help="show how the receptive field grows, layer by layer (or per block/stage)")
    analyze_cmd.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    add_estimate_arguments(analyze_cmd)
    analyze_cmd.set_defaults(run=run_analyze)

    review_cmd = commands.add_parser("review", help="check the design against the Rethinking paper's principles",
                                     description="Design review: representational bottlenecks (P1), width at "
                                     "the coarsest grid (P2), spatial aggregation over reduced embeddings (P3), "
                                     "stage balance (P4), factorization (§3), auxiliary heads (§4), grid "
                                     "reduction (§5). Exit 1 with --fail-on when a finding reaches that level.")
    _add_spec_arguments(review_cmd)
    review_cmd.add_argument("--format", choices=REVIEW_FORMATS, default="table", help="output format")
    review_cmd.add_argument("--fail-on", choices=SEVERITIES, metavar="LEVEL",
                            help="exit 1 when a finding of this severity or worse exists (info|warning|error)")
    review_cmd.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    review_cmd.set_defaults(run=run_review)

    build_cmd = commands.add_parser("build", help="build the torch model, check it, export it",
                                    description="Build a spec's torch.nn.Module (needs torch), check that it "
                                    "runs and matches the analysis, optionally export it.")
    _add_spec_arguments(build_cmd)
    build_cmd.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    build_cmd.add_argument("--dtype", default="fp32", help="fp32, bf16 or fp16 (default: fp32)")
    build_cmd.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    build_cmd.add_argument("--export", nargs=2, metavar=("FORMAT", "PATH"),
                           help="write the model as onnx (opens in Netron) or torchscript")
    build_cmd.add_argument("--summary", action="store_true",
                           help="print the module tree's blocks with params and output shapes")
    build_cmd.add_argument("--code", action="store_true",
                           help="print the forward pass generated for the model (one line per op)")
    build_cmd.set_defaults(run=run_build)

    bench_cmd = commands.add_parser("bench", help="measured throughput beside the roofline estimate (needs torch)",
                                    description="Time the built models (and torchvision's, when importable) "
                                    "and print images/s, latency p50/p90, achieved TFLOP/s and share of the "
                                    "device's peak beside the roofline estimate.")
    bench_options.add_arguments(bench_cmd)
    bench_cmd.set_defaults(run=run_bench)

    for name, module in (("diagram", diagram_command), ("compare", compare_command), ("report", report_command)):
        command = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(command)
        command.set_defaults(run=module.run)

    import_cmd = commands.add_parser(
        "import", help="trace any PyTorch model (torch.fx) and write it as a spec (needs torch)",
        description="Trace a PyTorch model with torch.fx, map every operation onto the op registry and "
        "write a readable spec (repeated modules become templates) that analyze, review, diagram and "
        "report read, and that builds a model loading the original's state_dict. Operations no op kind "
        "expresses are listed with their source line; the import then stops (exit 2).")
    import_cmd.add_argument("model", metavar="MODULE:CALLABLE",
                            help="e.g. torchvision.models:resnet50 or 'mypkg.nets:Net(width=2)' (literal arguments)")
    import_cmd.add_argument("--input-size", type=int, default=224, metavar="N", help="square input of N x N (default 224)")
    import_cmd.add_argument("--channels", type=int, default=3, metavar="C", help="input channels (default 3)")
    import_cmd.add_argument("--no-strict", dest="strict", action="store_false",
                            help="keep operations no op kind models as opaque ops (traced shape and weights "
                            "kept, MACs unknown; totals marked partial) instead of stopping")
    import_cmd.add_argument("-o", "--output", metavar="FILE", help="write the spec to FILE (atomically) instead of stdout")
    import_cmd.set_defaults(run=run_import)

    ops_cmd = commands.add_parser("ops", help="list the op kinds a spec can use")
    ops_cmd.set_defaults(run=run_ops)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_assignment(item) for item in args.overrides)


def _emit(text: str, output: str | None, protected: tuple = ()) -> None:
    if output:
        write_atomically(output, text, protected)
    else:
        sys.stdout.write(text)


def run_analyze(args: argparse.Namespace) -> int:
    report = analyze(args.spec, _overrides(args), args.input_size)
    if args.device:
        text = render_estimate(report, args.device, args.dtype, args.batch, args.mode, args.format, args.depth)
    else:
        text = render(report, args.format, args.depth, args.rf)
    _emit(text, args.output, (args.spec,))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from .bench import run  # torch is imported only when measuring

    return run(args)


def run_review(args: argparse.Namespace) -> int:
    report = analyze(args.spec, _overrides(args), args.input_size)
    _emit(render_review(report, report.findings, args.format), args.output, (args.spec,))
    if args.fail_on and severity_at_least(report.findings, args.fail_on):
        return 1
    return 0


def run_build(args: argparse.Namespace) -> int:
    from .build import EXPORT_FORMATS, build_and_check, export_model

    if args.export and args.export[0] not in EXPORT_FORMATS:
        raise OverrideError(f"--export takes one of {', '.join(EXPORT_FORMATS)}, got '{args.export[0]}'")
    model, report, lines = build_and_check(args.spec, _overrides(args), args.input_size, device=args.device,
                                           dtype=args.dtype, channels_last=args.channels_last,
                                           summary=args.summary)
    sys.stdout.write("\n".join(lines) + "\n")
    if args.code:
        sys.stdout.write("\n" + model.code)
    if args.export:
        fmt, path = args.export
        export_model(model, fmt, path, protected=(args.spec,))
        print(f"wrote {fmt} to {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from .importer import import_to_spec  # torch is imported only when importing a model
    from .numbers import human

    if args.input_size < 1 or args.channels < 1:
        raise OverrideError("--input-size and --channels must be positive")
    imported, text = import_to_spec(args.model, (args.channels, args.input_size, args.input_size), args.strict)
    _emit(text, args.output)
    report = analyze(imported.graph)
    print(f"{PROG}: imported {args.model} ({imported.traced_in} trace): {len(report.layers)} ops, "
          f"{report.totals.params:,} params, {human(report.totals.macs)} MACs"
          + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)
    for op in imported.unmodelled:
        print(f"{PROG}: note: not modelled, kept as an opaque op (MACs unknown): {op.line()}", file=sys.stderr)
    for module, params in imported.unreached.items():
        print(f"{PROG}: note: {module} holds {params:,} params but never runs in forward(); "
              "the spec leaves it out", file=sys.stderr)
    return 0


def run_ops(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .ops import OPS, REQUIRED, STRUCTURAL_OPS

    rows = []
    for name, op in OPS.items():
        signature = ", ".join(a.name if a.default is REQUIRED else f"{a.name}={a.default!r}" for a in op.args)
        usage = f"{name}: [branch, ...]" if name in STRUCTURAL_OPS else f"{name}({signature})"
        if name != "input":
            rows.append([usage, op.summary])
    sys.stdout.write(tabulate(rows, ["op", "what it is"], tablefmt="simple") + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except AnalyzerError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `analyze ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def analyze_main(argv: Sequence[str] | None = None) -> int:
    """The `analyze` console script: `analyze SPEC ...` = `inception-analyzer analyze SPEC ...`."""
    return main(["analyze", *(sys.argv[1:] if argv is None else argv)])
