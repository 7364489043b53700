"""`sweep SPEC`: many variants of one design, analysed, filtered by budgets, ranked, with the
Pareto front marked; in this process, a local pool (--jobs) or a Dask cluster (--engine dask)."""
from __future__ import annotations

import argparse
import sys
import time

from ..catalog import resolve
from ..errors import shown
from ..graph import resolve_arguments
from ..pipeline import Request, load_graph
from ..output import write_directory
from ..render.sweep import FORMATS, render_sweep, sweep_page
from ..spec import load_spec_text
from ..spec.yaml_source import read_text
from ..sweep.budgets import FIGURES, parse_budget
from ..analysis.latency_file import read_profile
from ..sweep.engines import ENGINES, SpecSource, run_variants
from ..sweep.evaluate import Prediction
from ..sweep.report import SweepReport
from ..sweep.space import DesignSpace, SweepError
from ..transform import check_width
from .options import SPEC_HELP, emit, parse_assignment, say

NAME = "sweep"
HELP = "many variants of a design (argument grids, widths, input sizes), ranked, the Pareto front marked"
DESCRIPTION = ("Analyse every variant of a design space: the product of --grid lists of spec arguments, --width "
               "multipliers and --input-size lists (or --random N samples of it); keep those within the --max "
               "budgets, rank them by MACs (by predicted latency with a calibrated --profile) then params, and mark "
               "the Pareto front. Invalid variants are listed with their located reason. -o DIR writes an HTML page "
               "with the Pareto plot beside the table.")
MAX_JOBS = 256
MAX_BATCH = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="values of a spec argument to sweep (repeatable: the product of the lists)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a spec argument fixed for every variant (repeatable)")
    parser.add_argument("--width", metavar="W1,W2,...",
                        help="width multipliers on every conv's output channels, e.g. 0.5,0.75,1.0")
    parser.add_argument("--round", dest="width_round", type=int, default=8, metavar="N",
                        help="channels round to a multiple of N under a width multiplier (default 8)")
    parser.add_argument("--input-size", metavar="N1,N2,...", help="square input sizes, e.g. 224,299")
    parser.add_argument("--random", type=int, metavar="N", help="N variants drawn at random from the space")
    parser.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    parser.add_argument("--max", dest="budgets", action="append", default=[], metavar="KEY=VALUE",
                        help=f"a budget, e.g. macs=6e9, params=25M, memory=512MiB, latency=5ms ({', '.join(FIGURES)})")
    parser.add_argument("--profile", metavar="PROFILE.yaml",
                        help="a calibrated device profile (from `calibrate`): each variant's predicted latency, "
                             "the ranking and the front by it")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="the batch the latency is predicted for (default 1)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local (this machine) or dask (a Dask cluster at --address)")
    parser.add_argument("--address", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("-o", "--output", metavar="DIR", help="also write DIR/sweep.html and DIR/sweep.json")


def _list(text: str | None, option: str, read) -> tuple:
    if text is None:
        return (None,)
    try:
        values = tuple(read(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise SweepError(f"{option} takes numbers separated by commas, got {shown(text)}") from None
    if not values:
        raise SweepError(f"{option} takes numbers separated by commas, got {shown(text)}")
    return values


def design_space(args: argparse.Namespace) -> DesignSpace:
    grid: dict[str, tuple] = {}
    for item in [*args.overrides, *args.grid]:
        key, raw = parse_assignment(item)[0], item.partition("=")[2]
        if key in grid:
            raise SweepError(f"{key} is swept twice (--grid and --set name each argument once)")
        grid[key] = tuple(parse_assignment(f"{key}={part}")[1] for part in raw.split(","))
    widths = _list(args.width, "--width", float)
    for width in widths:
        if width is not None:
            check_width(width, args.width_round)
    sizes = _list(args.input_size, "--input-size", int)
    if any(size is not None and not 1 <= size <= 2**31 for size in sizes):
        raise SweepError(f"--input-size values must be positive, got {shown(args.input_size)}")
    return DesignSpace(tuple(grid.items()), widths, sizes)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.jobs <= MAX_JOBS:
        raise SweepError(f"--jobs must be from 1 to {MAX_JOBS}, got {args.jobs}")
    if args.random is not None and args.random < 1:
        raise SweepError(f"--random must be a positive number of variants, got {args.random}")
    space = design_space(args)
    budgets = [parse_budget(text) for text in args.budgets]
    if any(b.key == "latency" for b in budgets) and not args.profile:
        raise SweepError("--max latency needs predicted latencies: a calibrated device profile (--profile)")
    if not 1 <= args.batch <= MAX_BATCH:
        raise SweepError(f"--batch must be from 1 to {MAX_BATCH:,}, got {args.batch}")
    prediction = Prediction(read_profile(args.profile), args.batch) if args.profile else None
    file = resolve(args.spec)
    source = SpecSource(read_text(file), file)  # read once: the check here and every task use this text
    spec = load_spec_text(source.text, file)  # every error of the spec itself before any variant runs
    for key, values in space.grid:  # and every argument named or typed wrongly: no variant could use it
        for value in values:
            resolve_arguments(spec, {key: value})
    # the spec as written (with its --set values) must be a network: a variant is invalid for what
    # the sweep changed, never for what was wrong before it
    load_graph(Request(spec, dict(parse_assignment(item) for item in args.overrides)))
    variants = space.sample(args.random, args.seed) if args.random else list(space.variants())
    started = time.monotonic()
    progress = _progress(started) if sys.stderr.isatty() else None
    results = run_variants(source, variants, args.width_round, args.jobs, args.engine,
                           args.address, progress, prediction)
    if progress:
        sys.stderr.write("\r\033[K")
    report = SweepReport(spec.name, file, space, budgets, results, by_latency=prediction is not None,
                         batch=args.batch)
    emit(render_sweep(report, args.format), None)
    if args.output:
        write_directory({"sweep.html": sweep_page(report), "sweep.json": render_sweep(report, "json")},
                        args.output, (file,), "sweep")
        say(f"wrote the sweep's page to {args.output}/sweep.html\n", sys.stderr)
    return 0


def _progress(started: float):
    def show(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        left = elapsed / done * (total - done) if done else 0
        sys.stderr.write(f"\r\033[K[{done:,}/{total:,}] variants, {done / elapsed if elapsed else 0:,.0f}/s, "
                         f"about {int(left // 60)}:{int(left % 60):02d} left")
        sys.stderr.flush()
    return show
