"""Measured throughput of the built models, beside the roofline estimate and torchvision's model.

    inception-analyzer bench SPEC... [--device cuda|cpu] [--batch 1,32,256] [--dtype fp32|tf32|bf16|fp16]
                             [--channels-last] [--compile] [--mode inference|train] [--per-layer]
                             [--format table|markdown|csv|json] [-o FILE]

How each figure is measured:
- Warm-up first (cuDNN's algorithm search, torch.compile's compilation, the allocator's growth),
  then enough timed iterations for --min-time seconds (at least MIN_ITERATIONS), or --iters.
- Ours and torchvision's model are built side by side and their timed iterations alternate in
  blocks (A B, B A, A B, B A), so that a drift of the machine falls on both alike.
- On CUDA every iteration is bracketed by two CUDA events recorded on the stream; nothing inside
  the loop synchronises, so kernels queue as in a real run, and a single synchronisation at the
  end precedes reading the events. On the CPU, where ops run synchronously, a perf_counter pair.
- p50 (median) and p90 of the per-iteration times; images/s = batch / p50.
- Achieved FLOP/s = the model's conventional FLOPs (2 x MACs per image; in training x3 and with
  the aux heads, analysis.roofline.model_flops) / p50, and its share of the device profile's
  dense matmul peak for the dtype.
- Peak memory: the CUDA caching allocator's max_memory_allocated over the timed iterations
  (weights and optimizer state included; cuDNN's algorithm search during warm-up excluded). On the
  CPU, one more step after the timed ones runs under torch's profiler with profile_memory=True: its
  allocator events, summed in time order, give the peak above the tensors the step holds
  (memory.py). Printed beside the memory analysis's prediction (analysis/memory.py).
- fp32 means IEEE fp32: TF32 is switched off for matmuls and cuDNN convolutions (PyTorch lets
  cuDNN use TF32 by default); tf32 switches it on. bf16 / fp16 inference casts the model;
  training keeps fp32 master weights under autocast (fp16 with a gradient scaler).
- Training times a full step of the Rethinking paper's recipe (recipe.TrainRecipe).
- A batch whose predicted peak memory (analysis/memory.py, on the device's backend) exceeds the
  free memory is reported as not fitting and not run; one that still runs out of memory is
  reported as such.
- torchvision's model of the same architecture (where torchvision can be imported and has one)
  runs with the same settings in the same process; ours / theirs is the ratio of images/s. The
  models are built afresh for each batch size.

One subject a module. `limits`, `stats` and `records` do not import torch: the command's parser
reads the limits at start-up and the renderer reads the records. This file re-exports nothing,
so importing the package costs nothing either.

    limits     the settings' defaults and bounds, the output formats, BenchError
    stats      percentiles, TimingStats, the bootstrap interval of a ratio
    records    Measurement (and its statuses), LayerTiming, BenchRow, BenchReport
    settings   BenchSettings, their check, and the torch switches a run sets
    recipe     the training step of the Rethinking paper
    timing     timing a step: CUDA events or perf_counter, warm-up, sizing a run, blocks
    workload   our built model, its inputs, and the step one timed iteration runs
    memory     the peak memory of a step: the CPU allocator's, from the profiler's memory events
    peers      torchvision's models of the same architectures
    profiler   --per-layer: each leaf module's forward time under the torch profiler
    machine    the environment lines, the device profile (the CPU probe), other processes' CPU share
    progress   the status line on stderr
    runner     run_benchmark: one row per model and batch; measure_models: fit, interleave, time
    calibrate  `calibrate`: microbenchmarks of single ops, fitted into a latency profile
"""
