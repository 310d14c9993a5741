#!/usr/bin/env python3
"""The data-parallel demo beside the one-process demo on this machine.

Runs, REPS times each and interleaved (so drift on a shared machine hits
every configuration alike): fashion_mnist_mlp on all threads, and
fashion_mnist_mpi on 1 rank with all threads and on 2 ranks with the
threads shared out (with and without Open MPI's yield_when_idle). Prints
the median samples/s, the median over repetitions of the ratio to that
repetition's one-process demo, the final test
accuracy and, for 2 ranks, the mean and fastest all-reduce and its share of
the training time; then bench/mpi_allreduce's table on 2 ranks.

Inside the build root, from the checkout:
    tools/ktnn run python3 bench/mpi_demo.py [--reps 3] [--epochs 5]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--reps", type=int, default=3)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--skip-allreduce", action="store_true")
args = parser.parse_args()

threads = int(os.environ.get("KTNN_THREADS", os.cpu_count() or 1))
examples = "build/openmp-release/examples"


def sh(*command, **kw):
    return subprocess.run(command, check=True, text=True, **kw)


print("building (openmp-release; bench preset with MPI for mpi_allreduce) ...", flush=True)
sh("cmake", "--preset", "openmp-release", stdout=subprocess.DEVNULL)
sh("cmake", "--build", "--preset", "openmp-release", "--target", "fashion_mnist_mlp",
   "fashion_mnist_mpi", stdout=subprocess.DEVNULL)
if not args.skip_allreduce:
    sh("cmake", "--preset", "bench", "-B", "build/mpi-bench", "-DKTNN_ENABLE_MPI=ON",
       stdout=subprocess.DEVNULL)
    sh("cmake", "--build", "build/mpi-bench", "--target", "mpi_allreduce", stdout=subprocess.DEVNULL)

base_env = dict(os.environ, OMP_PROC_BIND="false", OMPI_MCA_pml="ob1", OMPI_MCA_btl="self,sm",
                HWLOC_HIDE_ERRORS="2")
mpiexec = ["mpiexec", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n"]
per_rank = max(1, threads // 2)
configs = [
    ("fashion_mnist_mlp, 1 process", [f"{examples}/fashion_mnist_mlp"], threads, None),
    ("fashion_mnist_mpi, 1 rank", mpiexec + ["1", f"{examples}/fashion_mnist_mpi"], threads, None),
    ("fashion_mnist_mpi, 2 ranks", mpiexec + ["2", f"{examples}/fashion_mnist_mpi"], per_rank, "0"),
    ("fashion_mnist_mpi, 2 ranks, yield_when_idle",
     mpiexec + ["2", f"{examples}/fashion_mnist_mpi"], per_rank, "1"),
]
results = {name: [] for name, *_ in configs}
for rep in range(args.reps):
    for name, command, omp, yield_idle in configs:
        env = dict(base_env, OMP_NUM_THREADS=str(omp))
        if yield_idle is not None:
            env["OMPI_MCA_mpi_yield_when_idle"] = yield_idle
        out = sh(*command, "--epochs", str(args.epochs), env=env, capture_output=True).stdout
        trained = re.search(r"^trained .* ([0-9]+) samples/s, final test accuracy ([0-9.]+)$", out,
                            re.M)
        allreduce = re.search(r"^all-reduce: .*?([0-9.]+) us each on average .*?the fastest "
                              r"([0-9.]+) us, ([0-9.]+)% of the training time", out, re.M)
        if not trained:
            sys.exit(f"mpi_demo: no 'trained' line from {name}:\n{out}")
        row = {"rate": float(trained[1]), "accuracy": float(trained[2])}
        if allreduce and "2 ranks" in name:
            row.update(mean_us=float(allreduce[1]), min_us=float(allreduce[2]),
                       share=float(allreduce[3]))
        results[name].append(row)
        print(f"  run {rep + 1}: {name}: {row}", flush=True)

print(f"\n{args.epochs} epochs, global batch 128, {threads} threads in all, medians of "
      f"{args.reps} runs\n")
print("| run | threads a rank | samples/s | / 1 process | test accuracy | all-reduce mean / "
      "fastest | share of training |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, _, omp, _ in configs:
    rows = results[name]
    rate = statistics.median(r["rate"] for r in rows)
    # The ratio of each repetition's pair, then their median: drift between
    # repetitions cancels.
    ratio = statistics.median(r["rate"] / ref["rate"]
                              for r, ref in zip(rows, results[configs[0][0]]))
    accuracy = statistics.median(r["accuracy"] for r in rows)
    if "mean_us" in rows[0]:
        comm = (f"{statistics.median(r['mean_us'] for r in rows):.0f} / "
                f"{statistics.median(r['min_us'] for r in rows):.0f} us")
        share = f"{statistics.median(r['share'] for r in rows):.1f}%"
    else:
        comm = share = "–"
    print(f"| {name} | {omp} | {rate:,.0f} | {ratio:.2f} | {accuracy:.4f} | {comm} | "
          f"{share} |")

if not args.skip_allreduce:
    print("\nbench/mpi_allreduce on 2 ranks, 1 thread each:\n", flush=True)
    env = dict(base_env, OMP_NUM_THREADS="1")
    sh(*mpiexec, "2", "build/mpi-bench/bench/mpi_allreduce", "--reps", "200", env=env)
