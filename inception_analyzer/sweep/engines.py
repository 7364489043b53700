"""Where a sweep's variants run: in this process, in a local pool of processes (--jobs N), or as
tasks on a Dask cluster (--engine dask --address tcp://HOST:8786). All three run the same task,
`evaluate_chunk`: the spec's text, where it came from, and a chunk of variants in, their results
out, so a worker needs nothing but the package (no spec file on its disk, no state between tasks)
and the results are the same wherever they ran, in the sweep's order.

Dask rather than Ray: the task is a pure Python function of plain data, for which Dask's
distributed scheduler is a small pure-Python dependency that starts a local cluster in a second
(the test starts one), where Ray brings a runtime of its own for actors and GPUs that a sweep does
not use. See docs/sweep.md for when a cluster pays off.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

from ..spec import load_spec_text
from .evaluate import Prediction, VariantResult, evaluate
from .space import SweepError, Variant

ENGINES = ("local", "dask")
CHUNK = 64          # variants per task: parsing the spec once per task costs under 1% of the task


@dataclass(frozen=True)
class SpecSource:
    """A spec as a task carries it: its text and the file it came from (for messages)."""

    text: str
    file: str


def evaluate_chunk(source: SpecSource, first: int, variants: list[Variant], multiple: int,
                   prediction: Prediction | None = None) -> list[VariantResult]:
    """The task every engine runs: the variants `first`, `first + 1`, ... of one sweep."""
    spec = load_spec_text(source.text, source.file)
    return [evaluate(spec, first + offset, variant, multiple, prediction) for offset, variant in enumerate(variants)]


def _chunks(variants: list[Variant]) -> Iterator[tuple[int, list[Variant]]]:
    for start in range(0, len(variants), CHUNK):
        yield start, variants[start:start + CHUNK]


def run_variants(source: SpecSource, variants: list[Variant], multiple: int, jobs: int = 1, engine: str = "local",
                 address: str | None = None, progress: Callable[[int, int], None] | None = None,
                 prediction: Prediction | None = None) -> list[VariantResult]:
    """Every variant's result, in the sweep's order; `progress(done, total)` after each chunk."""
    chunks = list(_chunks(variants))
    total, done = len(variants), 0
    results: list[VariantResult] = []

    def collect(chunk_results: list[VariantResult]) -> None:
        nonlocal done
        results.extend(chunk_results)
        done += len(chunk_results)
        if progress:
            progress(done, total)

    if engine == "dask":
        for chunk_results in _on_dask(source, chunks, multiple, address, prediction):
            collect(chunk_results)
    elif jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(evaluate_chunk, source, first, chunk, multiple, prediction)
                       for first, chunk in chunks]
            for future in futures:
                collect(future.result())
    else:
        for first, chunk in chunks:
            collect(evaluate_chunk(source, first, chunk, multiple, prediction))
    return sorted(results, key=lambda r: r.index)


def _on_dask(source: SpecSource, chunks, multiple: int, address: str | None, prediction: Prediction | None):
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--engine dask needs Dask's distributed scheduler: pip install "
                         "'inception-analyzer[cluster]'") from None
    if not address:
        raise SweepError("--engine dask needs --address of a running scheduler (tcp://HOST:8786); "
                         "`dask scheduler` and `dask worker ADDRESS` start one")
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {type(err).__name__}: {err}") from None
    try:
        futures = [client.submit(evaluate_chunk, source, first, chunk, multiple, prediction, pure=False)
                   for first, chunk in chunks]
        for future in futures:
            yield future.result()
    finally:
        client.close()
