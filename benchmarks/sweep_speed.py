"""How fast does `sweep` go, and does it stay as fast as the sweep grows?

    ./dev bench sweep_speed              # 100, 1,000 and 10,000 random variants of Inception-v3
    ./dev bench sweep_speed --quick      # 50 and 200 variants (a minute)

The space: Inception-v3 without its auxiliary head (it needs 299 px), dropout 0.2/0.5, num_classes 10/100/1000, 36 widths (x0.25 to
x2.0) and 66 input sizes (139 to 399 px): 14,256 variants, sampled with --random's sampler.

1. Per-variant cost as the sweep grows: the same engine (in process, one job) on samples of
   rising size; milliseconds per variant should stay flat.
2. Jobs: the largest sample with --jobs 1 and --jobs 2 (a local process pool); the speed-up.
3. A Dask cluster: the same sample on a local cluster of as many one-thread workers as jobs, started
   here as `--engine dask --address` would find one; variants per second, and the results checked
   equal to the local run's.
4. The peer, measured in the same run: what a user does by hand for one variant, build it in torch
   (build_model at that width and size) and count its FLOPs with torch's FlopCounterMode; the
   ratio is the peer's time per variant over the sweep's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inception_analyzer.spec.yaml_source import read_text  # noqa: E402
from inception_analyzer.sweep.engines import SpecSource, run_variants  # noqa: E402
from inception_analyzer.sweep.space import DesignSpace  # noqa: E402

SPEC = str(ROOT / "specs" / "inception_v3.yaml")
SPACE = DesignSpace((("aux_logits", (False,)), ("dropout", (0.2, 0.5)), ("num_classes", (10, 100, 1000))),
                    tuple(w / 20 for w in range(5, 41)), tuple(range(139, 400, 4)))


def timed(variants, jobs=1, engine="local", address=None):
    started = time.perf_counter()
    results = run_variants(SpecSource(read_text(SPEC), SPEC), variants, 8, jobs, engine, address)
    return time.perf_counter() - started, results


def peer_seconds_per_variant(variants) -> float | None:
    """build_model + FlopCounterMode for each variant (the by-hand way), median seconds."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    from inception_analyzer import build_model
    from inception_analyzer.pipeline import Request, analyze

    times = []
    for variant in variants:
        started = time.perf_counter()
        try:
            analysis = analyze(Request(SPEC, dict(variant.arguments), variant.input_size, variant.width))
        except Exception:   # an invalid variant: the by-hand way fails in torch instead
            continue
        model = build_model(analysis).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *analysis.input))
        counter.get_total_flops()
        sum(p.numel() for p in model.parameters())
        times.append(time.perf_counter() - started)
    return statistics.median(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 and 200 variants")
    parser.add_argument("--sizes", help="sample sizes, e.g. 100,1000,10000")
    parser.add_argument("--jobs", type=int, default=2, help="workers for the pool and the Dask cluster")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [50, 200] if args.quick else [100, 1000, 10000]
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; space of {SPACE.size:,} variants "
          f"of inception_v3")

    print("\n1. per-variant cost as the sweep grows (in process, one job)")
    print(f"{'variants':>9} {'seconds':>8} {'variants/s':>11} {'ms/variant':>11} {'invalid':>8}")
    largest = None
    for size in sizes:
        variants = SPACE.sample(size, seed=size)
        seconds, results = timed(variants)
        print(f"{size:>9,} {seconds:>8.1f} {size / seconds:>11.1f} {seconds / size * 1e3:>11.1f} "
              f"{sum(not r.ok for r in results):>8,}")
        largest = (variants, seconds, results)
    variants, one_job, local_results = largest

    print(f"\n2. {len(variants):,} variants, --jobs 1 against --jobs {args.jobs}")
    pooled_seconds, pooled = timed(variants, jobs=args.jobs)
    assert pooled == local_results, "the pool's results differ from the local run's"
    print(f"jobs 1: {one_job:.1f} s ({len(variants) / one_job:.1f} variants/s); jobs {args.jobs}: {pooled_seconds:.1f} s "
          f"({len(variants) / pooled_seconds:.1f} variants/s); speed-up {one_job / pooled_seconds:.2f}x")

    print(f"\n3. the same on a local Dask cluster of {args.jobs} one-thread workers")
    try:
        from distributed import LocalCluster
    except ImportError:
        print("skipped: Dask's distributed is not installed (pip install 'inception-analyzer[cluster]')")
    else:
        with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            dask_seconds, on_dask = timed(variants, engine="dask", address=cluster.scheduler_address)
        assert on_dask == local_results, "the cluster's results differ from the local run's"
        print(f"dask: {dask_seconds:.1f} s ({len(variants) / dask_seconds:.1f} variants/s, "
              f"{len(variants) / dask_seconds / args.jobs:.1f} per worker); results equal to the local run's")

    print("\n4. the peer: build each variant in torch and count it with FlopCounterMode (10 variants)")
    peer = peer_seconds_per_variant(SPACE.sample(10, seed=1))
    if peer is None:
        print("skipped: torch is not installed")
    else:
        ours = one_job / len(variants)
        print(f"peer: {peer * 1e3:.0f} ms per variant; sweep: {ours * 1e3:.1f} ms per variant; "
              f"ratio {peer / ours:.0f}x")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
