"""Benchmark harness behind `uavrt bench`: per-stage latency, throughput, memory, efficiency.

Why it lives in the package and not in `benchmarks/`: `uavrt bench` is an installed console
command, so the code it runs must be importable from the installed package (`benchmarks/` is not
installed). `benchmarks/` holds runnable scripts built on this harness (scaling runs, the memory
benchmark) and the results the project quotes (`benchmarks/results/`, machine named).

Modules, one concept each:
    clock     stage timing by wrapping the runtime's runners/callables (no copy of the pipeline)
    memory    peak host RSS (sampling thread + getrusage) and peak GPU memory
    flops     U-Net FLOPs counted by torch on the meta device, GPU peak table, MFU, bytes moved
    env       software versions, CPU model/cores, GPU
    scenario  the benchmark grid (frozen dataclasses) -> RunConfig
    weights   the release architecture with seeded random weights (--random-weights)
    measure   build an upscaler per backend, warm up, repeat, summarise one scenario
    report    JSON lines, Markdown table, stacked-stage PNG chart
    scaling   time and memory vs video length and vs resolution
    cli       `uavrt bench` flags
"""
