#!/usr/bin/env python3
"""The scaling model of docs/scaling.md: one data-parallel step's time is
compute plus one all-reduce of the gradient arena. Prints the tables of the
page and draws docs/images/scaling.svg with gnuplot (in the ktnn root:
tools/ktnn run python3 docs/scaling_model.py).

Every number the model assumes is a constant below, named and explained;
change one and run the script again. -o FILE.png draws a PNG instead.
"""
import math
import os
import subprocess
import sys
import tempfile

# --- The fabric: 100-200 Gb/s InfiniBand, a CUDA-aware MPI (GPU memory sent
# by RDMA, no staging). Bandwidth as MPI achieves it, ~90% of the link.
FABRICS = {
    "EDR 100 Gb/s": {"alpha": 2.0e-6, "beta": 11.0e9},
    "HDR 200 Gb/s": {"alpha": 2.0e-6, "beta": 22.0e9},
}
# --- One rank: one GPU running ktnn's own FP32 kernels, measured on an
# NVIDIA H200 (bench/RESULTS.md, "the first GPU run": the demo's training
# step with a fence after each, Adam included): 663 k samples/s at batch
# 128, 5.19 M at 1,024 and 12.8 M at 16,384. The line through the last two
# gives the rate and the fixed cost per step (about 22 kernel launches, the
# loss reduction, the optimizer); at batch 128 it predicts 134 us where the
# step took 193 us, so at small batches the model understates compute and
# overstates communication's share. An H100 SXM has the H200's SMs and
# clocks (less memory bandwidth), so its FP32 compute should be close.
GPU_SAMPLES_PER_S = {1024: 5.19e6, 16384: 12.8e6}
BYTES = 4  # float

MODELS = {
    "demo 784-256-128-10": [784, 256, 128, 10],
    "MLP 784-1024x4-10": [784, 1024, 1024, 1024, 1024, 10],
}

# --- Measured on the development machine (2 cores, AMD Zen 5, Open MPI
# 5.0.7, shared memory, 2 ranks of 1 OpenMP thread each, the machine
# otherwise idle), by bench/mpi_allreduce --reps 200 (medians of 200, a
# barrier before each; the median of three runs) and
# examples/fashion_mnist_mpi; commands in docs/scaling.md. Seconds, bytes/s.
MEASURED = {
    "shm_alpha": 0.1e-6,  # all-reduce of 4 bytes
    "shm_beta": 1048576 / 91.9e-6,  # all-reduce of 1 MiB (bus bandwidth)
    "allreduce_demo": 79.5e-6,  # all-reduce of the demo's 940,584-byte arena
    "compute_64": 444.1e-6,  # forward, loss, backward, 64 samples a rank
    "compute_then_allreduce": 531.7e-6,  # the two, one after the other
    "step_1rank_b64": 64 / 113295,  # the demo's step, 1 rank x 1 thread, batch 64
    "samples_2ranks": (164000, 181000),  # the demo, 2 ranks x 1 thread, batch 128
}


def layers(widths):
    return list(zip(widths[:-1], widths[1:]))


def parameters(widths):
    return sum(i * o + o for i, o in layers(widths))


def flops_per_sample(widths):
    """Forward, weight gradients, input gradients of every layer but the
    first: 2 flops per multiply-add."""
    macs = [i * o for i, o in layers(widths)]
    return 2 * sum(macs) + 2 * sum(macs) + 2 * sum(macs[1:])


def _fit_gpu():
    """Rate R and fixed cost t0 of T = t0 + b F / R through the H200's two
    larger batches of the demo."""
    (b1, r1), (b2, r2) = sorted(GPU_SAMPLES_PER_S.items())
    t1, t2 = b1 / r1, b2 / r2
    per_sample = (t2 - t1) / (b2 - b1)
    return flops_per_sample(MODELS["demo 784-256-128-10"]) / per_sample, t1 - b1 * per_sample


GPU_FLOPS, GPU_STEP_OVERHEAD = _fit_gpu()


def layer_backward_flops(widths):
    """Backward flops per sample of each layer, first to last."""
    macs = [i * o for i, o in layers(widths)]
    return [2 * m + (2 * m if k > 0 else 0) for k, m in enumerate(macs)]


def allreduce(size_bytes, p, fabric, ring_latency=False):
    """A reduce-scatter then an all-gather: each rank sends and receives
    2 (p-1)/p of the buffer (a ring's volume, the least any all-reduce moves).
    Latency: 2 log2(p) messages (recursive halving and doubling, what MPI
    libraries use for large p), or a ring's 2 (p-1) with ring_latency."""
    if p == 1:
        return 0.0
    hops = 2 * (p - 1) if ring_latency else 2 * math.ceil(math.log2(p))
    return hops * fabric["alpha"] + 2 * (p - 1) / p * size_bytes / fabric["beta"]


def balance_batch(widths, fabric):
    """The batch per rank at which compute equals the all-reduce, for p
    large (2 S / beta): below it, communication dominates at any scale."""
    size = parameters(widths) * BYTES
    return max(0.0, (2 * size / fabric["beta"] - GPU_STEP_OVERHEAD) /
               (flops_per_sample(widths) / GPU_FLOPS))


def compute(widths, batch):
    return GPU_STEP_OVERHEAD + batch * flops_per_sample(widths) / GPU_FLOPS


def step(widths, batch, p, fabric, overlap=False):
    """One step on `batch` samples a rank. With overlap, each layer's
    gradients start their own all-reduce as soon as its backward is done
    (last layer first), one after another on the network; the first layer's
    is last and cannot hide."""
    size = parameters(widths) * BYTES
    if not overlap or p == 1:
        return compute(widths, batch) + allreduce(size, p, fabric)
    total = flops_per_sample(widths)
    back = layer_backward_flops(widths)
    forward_time = GPU_STEP_OVERHEAD + batch * (total - sum(back)) / GPU_FLOPS
    t = forward_time
    network_free = 0.0
    for k in reversed(range(len(back))):  # backward: last layer first
        t += batch * back[k] / GPU_FLOPS
        i, o = layers(widths)[k]
        start = max(t, network_free)
        network_free = start + allreduce((i * o + o) * BYTES, p, fabric)
    return max(t, network_free)


def throughput(widths, batch, p, fabric, overlap=False):
    return p * batch / step(widths, batch, p, fabric, overlap)


def crossover(widths, global_batch, fabric):
    """The first power-of-two rank count at which the all-reduce takes longer
    than the compute, in strong scaling (global batch fixed)."""
    size = parameters(widths) * BYTES
    p = 2
    while p <= 1 << 16:
        if allreduce(size, p, fabric) > compute(widths, global_batch / p):
            return p
        p *= 2
    return None


RANKS = [2**k for k in range(0, 11)]


def tables():
    out = []
    hdr = FABRICS["HDR 200 Gb/s"]
    out.append("| model | parameters | bytes | flops per sample | all-reduce, p = 2 / 64 (HDR) |")
    out.append("| --- | ---: | ---: | ---: | --- |")
    for name, w in MODELS.items():
        size = parameters(w) * BYTES
        out.append(
            f"| {name} | {parameters(w):,} | {size:,} | {flops_per_sample(w) / 1e6:.2f} M | "
            f"{allreduce(size, 2, hdr) * 1e6:.0f} us / {allreduce(size, 64, hdr) * 1e6:.0f} us |")
    out.append("")
    out.append("Batch per rank at which compute equals the all-reduce (p large): " + ", ".join(
        f"{name} {balance_batch(w, hdr):.0f} (HDR) / {balance_batch(w, FABRICS['EDR 100 Gb/s']):.0f} (EDR)"
        for name, w in MODELS.items()))
    out.append("")
    out.append("Strong scaling, global batch 8,192 (speedup over one rank, HDR; EDR in brackets):")
    out.append("")
    out.append("| model | " + " | ".join(f"p = {p}" for p in RANKS[1:]) + " | comm. > compute from |")
    out.append("| --- | " + " | ".join("---:" for _ in RANKS[1:]) + " | ---: |")
    for name, w in MODELS.items():
        cells = []
        for p in RANKS[1:]:
            s_hdr = throughput(w, 8192 / p, p, hdr) / throughput(w, 8192, 1, hdr)
            s_edr = (throughput(w, 8192 / p, p, FABRICS["EDR 100 Gb/s"]) /
                     throughput(w, 8192, 1, hdr))
            cells.append(f"{s_hdr:.1f} ({s_edr:.1f})")
        c = crossover(w, 8192, hdr)
        out.append(f"| {name} | " + " | ".join(cells) + f" | p = {c} |")
    out.append("")
    out.append("Weak scaling, efficiency T(1) / T(p) at a fixed batch per rank (HDR):")
    out.append("")
    out.append("| model | batch per rank | p = 2 | p = 8 | p = 64 | p = 1024 | with overlap, p = 64 |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, w in MODELS.items():
        for b in (128, 1024, 8192):
            eff = [step(w, b, 1, hdr) / step(w, b, p, hdr) for p in (2, 8, 64, 1024)]
            ov = step(w, b, 1, hdr) / step(w, b, 64, hdr, overlap=True)
            out.append(f"| {name} | {b:,} | " + " | ".join(f"{e:.2f}" for e in eff) +
                       f" | {ov:.2f} |")
    return "\n".join(out)


def validation():
    m = MEASURED
    demo = MODELS["demo 784-256-128-10"]
    size = parameters(demo) * BYTES
    shm = {"alpha": m["shm_alpha"], "beta": m["shm_beta"]}
    ar = allreduce(size, 2, shm)
    step = m["step_1rank_b64"] + ar
    return "\n".join([
        f"all-reduce of the demo's arena: model {ar * 1e6:.1f} us (alpha {shm['alpha'] * 1e6:.1f} "
        f"us, beta {shm['beta'] / 1e9:.1f} GB/s), measured {m['allreduce_demo'] * 1e6:.1f} us",
        f"compute then all-reduce: model {(m['compute_64'] + ar) * 1e6:.1f} us "
        f"(compute {m['compute_64'] * 1e6:.1f} + {ar * 1e6:.1f}), measured "
        f"{m['compute_then_allreduce'] * 1e6:.1f} us",
        f"demo on 2 ranks: model {128 / step:.0f} samples/s (a 1-rank step of 64 samples "
        f"{m['step_1rank_b64'] * 1e6:.0f} us + the all-reduce), measured "
        f"{m['samples_2ranks'][0]:,}-{m['samples_2ranks'][1]:,} samples/s",
    ])


def plot(path):
    hdr = FABRICS["HDR 200 Gb/s"]
    edr = FABRICS["EDR 100 Gb/s"]
    with tempfile.TemporaryDirectory() as tmp:
        strong = os.path.join(tmp, "strong.dat")
        with open(strong, "w") as f:
            for p in RANKS:
                row = [p, p]
                for w in MODELS.values():
                    for fab in (hdr, edr):
                        row.append(throughput(w, 8192 / p, p, fab) / throughput(w, 8192, 1, hdr))
                f.write(" ".join(f"{v:.6g}" for v in row) + "\n")
        weak = os.path.join(tmp, "weak.dat")
        with open(weak, "w") as f:
            for p in RANKS:
                row = [p]
                for w in MODELS.values():
                    for b in (128, 1024, 8192):
                        row.append(step(w, b, 1, hdr) / step(w, b, p, hdr))
                f.write(" ".join(f"{v:.6g}" for v in row) + "\n")
        batch = os.path.join(tmp, "batch.dat")
        with open(batch, "w") as f:
            for k in range(4, 15):
                b = 2**k
                row = [b]
                for w in MODELS.values():
                    row.append(step(w, b, 1, hdr) / step(w, b, 64, hdr))
                    row.append(step(w, b, 1, hdr) / step(w, b, 64, hdr, overlap=True))
                f.write(" ".join(f"{v:.6g}" for v in row) + "\n")
        names = list(MODELS)
        terminal = ("pngcairo size 1500,460 noenhanced font 'Helvetica,10'" if path.endswith(".png")
                    else "svg size 1500,460 fixed noenhanced font 'Helvetica,13'")
        script = f"""
set terminal {terminal} background rgb 'white'
set output '{path}'
set multiplot layout 1,3
set grid
set logscale x 2
set key top left
set title 'Strong scaling, global batch 8192'
set xlabel 'ranks (GPUs)'
set ylabel 'speedup over one rank'
set logscale y 2
plot '{strong}' using 1:2 with lines dt 2 lc rgb 'gray' title 'ideal', \\
     '' using 1:3 with linespoints lc rgb '#1f77b4' pt 7 title '{names[0]}, HDR', \\
     '' using 1:4 with linespoints lc rgb '#1f77b4' pt 6 dt 3 title '{names[0]}, EDR', \\
     '' using 1:5 with linespoints lc rgb '#d62728' pt 7 title '{names[1]}, HDR', \\
     '' using 1:6 with linespoints lc rgb '#d62728' pt 6 dt 3 title '{names[1]}, EDR'
unset logscale y
set yrange [0:1.05]
set key bottom left
set title 'Weak scaling (HDR), batch per rank fixed'
set ylabel 'efficiency T(1) / T(p)'
plot '{weak}' using 1:2 with linespoints lc rgb '#1f77b4' pt 7 title '{names[0]}, 128', \\
     '' using 1:3 with linespoints lc rgb '#1f77b4' pt 5 title '{names[0]}, 1024', \\
     '' using 1:4 with linespoints lc rgb '#1f77b4' pt 9 title '{names[0]}, 8192', \\
     '' using 1:5 with linespoints lc rgb '#d62728' pt 7 title '{names[1]}, 128', \\
     '' using 1:6 with linespoints lc rgb '#d62728' pt 5 title '{names[1]}, 1024', \\
     '' using 1:7 with linespoints lc rgb '#d62728' pt 9 title '{names[1]}, 8192'
set title 'What batch and overlap buy: 64 ranks (HDR)'
set xlabel 'batch per rank'
set key bottom right
plot '{batch}' using 1:2 with linespoints lc rgb '#1f77b4' pt 7 title '{names[0]}', \\
     '' using 1:3 with linespoints lc rgb '#1f77b4' pt 6 dt 3 title '{names[0]}, overlapped', \\
     '' using 1:4 with linespoints lc rgb '#d62728' pt 7 title '{names[1]}', \\
     '' using 1:5 with linespoints lc rgb '#d62728' pt 6 dt 3 title '{names[1]}, overlapped'
unset multiplot
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    print(tables())
    print()
    print(validation())
    if "--no-plot" not in sys.argv:
        # -o FILE (.svg or .png) draws elsewhere.
        out = os.path.join(here, "images", "scaling.svg")
        if "-o" in sys.argv:
            out = sys.argv[sys.argv.index("-o") + 1]
        plot(out)
        print(f"\nwrote {out}")
