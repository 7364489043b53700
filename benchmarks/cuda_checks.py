"""The CUDA checks, as plain functions: the tests run them under pytest where CUDA exists
(tests/test_build.py, tests/test_bench.py), and the GPU suite runs them on the lent machine,
whose Python has no pytest (benchmarks/gpu_suite).

    python3 benchmarks/cuda_checks.py    # each check's name and PASS or FAIL; exit 1 on a failure
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests" / "data" / "tiny_inception.yaml")


def cuda_build_matches_cpu() -> None:
    """A model built on CUDA computes what the same weights compute on the CPU."""
    from inception_analyzer import build_model

    torch.manual_seed(0)
    cpu = build_model(TINY).eval()
    gpu = build_model(TINY, device="cuda").eval()
    gpu.load_state_dict(cpu.state_dict())
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gpu(image.cuda()).cpu(), cpu(image), rtol=1e-4, atol=1e-4)


def cuda_events_agree_with_the_synchronised_wall_clock() -> None:
    """bench times CUDA iterations with events and never synchronises inside the loop: their
    sum must be the wall time of the same iterations, synchronised before and after."""
    from inception_analyzer.bench.timing import measure, time_iterations

    a = torch.randn(2048, 2048, device="cuda")
    device = torch.device("cuda")
    step = lambda: a @ a  # noqa: E731
    measure(step, device, warmup=3, iterations=3)
    torch.cuda.synchronize()
    start = time.perf_counter()
    samples = time_iterations(step, device, 20)
    wall = time.perf_counter() - start
    assert abs(sum(samples) - wall) <= 0.2 * wall, f"events {sum(samples):.6f} s, wall clock {wall:.6f} s"


def cuda_a_call_timed_on_the_device_is_its_kernel_not_its_launch() -> None:
    """calibrate times each call on the device with the host kept ahead (bench/timing.py's
    time_on_device): a tiny kernel, which the host enqueues more slowly than the device runs it,
    comes out faster than events back to back time it (they time the host), with the host's
    time per call beside it; a long kernel comes out the same both ways."""
    import statistics

    from inception_analyzer.bench.timing import time_iterations, time_on_device

    device = torch.device("cuda")
    tiny = torch.randn(256, device="cuda")
    large = torch.randn(4096, 4096, device="cuda")
    for step in (lambda: torch.relu(tiny), lambda: large @ large):
        time_iterations(step, device, 5)
    queued, host = time_on_device(lambda: torch.relu(tiny), device, 200)
    plain = time_iterations(lambda: torch.relu(tiny), device, 200)
    assert host > 0 and statistics.median(queued) < 0.8 * statistics.median(plain), \
        f"tiny: {statistics.median(queued) * 1e6:.2f} us on the device, {statistics.median(plain) * 1e6:.2f} us " \
        f"back to back, host {host * 1e6:.2f} us"
    queued, _ = time_on_device(lambda: large @ large, device, 20)
    plain = time_iterations(lambda: large @ large, device, 20)
    assert abs(statistics.median(queued) / statistics.median(plain) - 1) < 0.1, \
        f"large: {statistics.median(queued) * 1e3:.3f} ms on the device, " \
        f"{statistics.median(plain) * 1e3:.3f} ms back to back"


CHECKS = [cuda_build_matches_cpu, cuda_events_agree_with_the_synchronised_wall_clock,
          cuda_a_call_timed_on_the_device_is_its_kernel_not_its_launch]


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    failed = 0
    for check in CHECKS:
        try:
            check()
            print(f"PASS {check.__name__}")
        except Exception as err:  # noqa: BLE001 - every check runs and says how it failed
            failed += 1
            print(f"FAIL {check.__name__}: {type(err).__name__}: {err}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
