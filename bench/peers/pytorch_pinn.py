#!/usr/bin/env python3
"""The PINN benchmark in PyTorch: a physics-informed network trained on the 2-D
Poisson problem

  -(u_xx + u_yy) = f = 2 pi^2 sin(pi x) sin(pi y)  on (0,1)^2,   u = 0 on the boundary,

whose exact solution is u = sin(pi x) sin(pi y), written as PyTorch users write
it: nn.Sequential(Linear(2,64), Tanh, Linear(64,64), Tanh, Linear(64,64), Tanh,
Linear(64,1)) with PyTorch's default initialization (torch.manual_seed), input
derivatives by torch.autograd.grad with create_graph=True, Adam.

Each step draws 1,024 interior points uniform in (0,1)^2 and 256 boundary points
(64 uniform on each edge) from a seeded torch.Generator, then

  u = net(x)                                   x.requires_grad_(True)
  du = autograd.grad(u.sum(), x, create_graph=True)
  u_xx = autograd.grad(du[:, 0].sum(), x, create_graph=True)[:, 0]   (u_yy alike)
  loss = mean((-(u_xx + u_yy) - f(x))^2) + 100 * mean(net(x_boundary)^2)

followed by zero_grad, backward, optimizer.step() (and scheduler.step() with
--schedule cosine: CosineAnnealingLR, T_max = --steps, eta_min 1e-5, from --lr).

--steps N counts every optimizer step of the run (the schedule and rel_l2 refer
to it); the first --warmup K of them are not timed, and steps/s is over the
remaining N - K (sampling included: it is part of each step). rel_l2 is
||u - u_exact|| / ||u_exact|| on the 101 x 101 grid of [0,1]^2, boundary
included, evaluated under torch.no_grad() in the run's dtype.

--mode derivatives times input derivatives alone: for --points P fixed points,
the outputs, the gradient (create_graph=True) and the Laplacian (the same two
autograd.grad calls) --repeats times, after --warmup untimed repetitions, and
reports points/s; --no-laplacian times outputs and gradient only (no
create_graph). The network's parameters keep requires_grad=True, as in training.

--self-check first compares the autograd gradient and Laplacian (the same
function the training step uses) with central finite differences of the
freshly initialized network in float64 at 256 random interior points, prints
the max relative difference (|autograd - fd| over the largest |fd|) and asserts
it is below 1e-5 (gradient) and 1e-4 (Laplacian); then the run goes on, and
in train mode the trained network is checked the same way at the end.

Threads: --threads T calls torch.set_num_threads(T); without it OMP_NUM_THREADS
is honoured if set, else torch's default. Debian's torch runs its Linear layers
through OpenBLAS, whose own threads spin beside torch's OpenMP threads: as
bench/run does for the peers, OPENBLAS_NUM_THREADS defaults to 1 here when the
environment does not set it (the JSON line records the value); torch's own
kernels still use all --threads.

Prints a human line on stderr and one JSON line on stdout:

  {"peer": "pytorch", "benchmark": "pinn_poisson", "dtype": ..., "threads": ...,
   "steps": ..., "steps_per_s": ..., "rel_l2": ..., "loss": ..., "torch": ...}
  {"peer": "pytorch", "benchmark": "pinn_derivatives", ..., "points_per_s": ...}

usage: pytorch_pinn.py [--mode train|derivatives] [--steps N] [--warmup K]
                       [--dtype float32|float64] [--threads T] [--seed S]
                       [--lr LR] [--schedule constant|cosine] [--points P]
                       [--repeats R] [--no-laplacian] [--self-check]
                       [--log-every N] [--device D]
"""

import argparse
import copy
import json
import math
import os
import sys
import time

# Before torch loads OpenBLAS: see the docstring (a 2-thread run on 2 cores took
# minutes instead of seconds with OpenBLAS's own threads beside torch's).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

INTERIOR = 1024
PER_EDGE = 64  # 4 edges: 256 boundary points
BOUNDARY_WEIGHT = 100.0
GRID = 101
ETA_MIN = 1e-5


def make_net():
    return nn.Sequential(
        nn.Linear(2, 64), nn.Tanh(),
        nn.Linear(64, 64), nn.Tanh(),
        nn.Linear(64, 64), nn.Tanh(),
        nn.Linear(64, 1))


def source(x):
    """f = 2 pi^2 sin(pi x) sin(pi y), one value per row of x (N x 2)."""
    return 2 * math.pi ** 2 * torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])


def exact(x):
    return torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])


def sample_interior(n, generator, dtype, device):
    return torch.rand(n, 2, generator=generator, dtype=dtype).to(device)


def sample_boundary(per_edge, generator, dtype, device):
    """per_edge points uniform on each of the four edges of the unit square."""
    t = torch.rand(4, per_edge, generator=generator, dtype=dtype)
    zero, one = torch.zeros(per_edge, dtype=dtype), torch.ones(per_edge, dtype=dtype)
    edges = [
        torch.stack([t[0], zero], dim=1),  # y = 0
        torch.stack([t[1], one], dim=1),   # y = 1
        torch.stack([zero, t[2]], dim=1),  # x = 0
        torch.stack([one, t[3]], dim=1),   # x = 1
    ]
    return torch.cat(edges).to(device)


def derivatives(net, x, laplacian=True, create_graph=True):
    """u (N), grad u (N x 2) and, with laplacian, u_xx + u_yy (N) with respect
    to x, which must require grad. create_graph=False leaves the results out of
    the graph (no parameter gradients through them)."""
    u = net(x).squeeze(1)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=create_graph or laplacian)
    if not laplacian:
        return u, du, None
    (d2x,) = torch.autograd.grad(du[:, 0].sum(), x, create_graph=create_graph, retain_graph=True)
    (d2y,) = torch.autograd.grad(du[:, 1].sum(), x, create_graph=create_graph)
    return u, du, d2x[:, 0] + d2y[:, 1]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def relative_l2(net, dtype, device):
    s = torch.linspace(0, 1, GRID, dtype=dtype, device=device)
    gx, gy = torch.meshgrid(s, s, indexing="ij")
    x = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.no_grad():
        u = net(x).squeeze(1)
        ue = exact(x)
        return (torch.linalg.vector_norm(u - ue) / torch.linalg.vector_norm(ue)).item()


def self_check(net, seed):
    """Autograd gradient and Laplacian against central finite differences of
    the network, in float64."""
    net64 = copy.deepcopy(net).to(device="cpu", dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(256, 2, generator=g, dtype=torch.float64).requires_grad_(True)
    _, du, lap = derivatives(net64, x, create_graph=False)
    x = x.detach()
    h1, h2 = 1e-6, 1e-4  # O(h^2) truncation vs eps/h (gradient), eps/h^2 (Laplacian)
    with torch.no_grad():
        f = lambda p: net64(p).squeeze(1)
        u0 = f(x)
        fd_grad = torch.empty_like(x)
        fd_lap = torch.zeros_like(u0)
        for k in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[k] = 1.0
            fd_grad[:, k] = (f(x + h1 * e) - f(x - h1 * e)) / (2 * h1)
            fd_lap += (f(x + h2 * e) - 2 * u0 + f(x - h2 * e)) / (h2 * h2)
    grad_rel = ((du - fd_grad).abs().max() / fd_grad.abs().max()).item()
    lap_rel = ((lap - fd_lap).abs().max() / fd_lap.abs().max()).item()
    print(f"self-check (float64, 256 points): gradient max rel diff {grad_rel:.3e}, "
          f"Laplacian max rel diff {lap_rel:.3e} (max |Laplacian| {fd_lap.abs().max().item():.3e})",
          file=sys.stderr)
    assert grad_rel < 1e-5, f"autograd gradient differs from finite differences: {grad_rel:.3e}"
    assert lap_rel < 1e-4, f"autograd Laplacian differs from finite differences: {lap_rel:.3e}"
    return {"grad_max_rel_diff": grad_rel, "laplacian_max_rel_diff": lap_rel}


def train(args, net, dtype, device, common):
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps, eta_min=ETA_MIN)
                 if args.schedule == "cosine" else None)
    generator = torch.Generator().manual_seed(args.seed)
    warmup = min(args.warmup, args.steps)
    log_every = args.log_every or max(1, args.steps // 10)

    def step():
        lr = optimizer.param_groups[0]["lr"]
        x = sample_interior(INTERIOR, generator, dtype, device).requires_grad_(True)
        xb = sample_boundary(PER_EDGE, generator, dtype, device)
        _, _, lap = derivatives(net, x)
        residual = -lap - source(x)
        loss = residual.pow(2).mean() + BOUNDARY_WEIGHT * net(xb).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss, lr

    first_loss = None
    start = None
    for i in range(args.steps):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        loss, lr = step()
        if i == 0 or (i + 1) % log_every == 0 or i + 1 == args.steps:
            value = loss.item()
            if first_loss is None:
                first_loss = value
            print(f"step {i + 1}/{args.steps}: loss {value:.6g}, lr {lr:.3g}",
                  file=sys.stderr)
    sync(device)
    timed = args.steps - warmup
    seconds = time.perf_counter() - start if start is not None else 0.0
    rate = timed / seconds if seconds > 0 else 0.0
    final_loss = loss.item() if args.steps > 0 else float("nan")
    rel = relative_l2(net, dtype, device)
    print(f"pytorch pinn_poisson {args.dtype}, {common['threads']} threads: {timed} timed steps in "
          f"{seconds:.3f} s = {rate:.2f} steps/s; final loss {final_loss:.6g}, rel L2 {rel:.4e}",
          file=sys.stderr)
    return {"peer": "pytorch", "benchmark": "pinn_poisson", **common, "steps": args.steps, "warmup": warmup,
            "timed_steps": timed, "seconds": seconds, "steps_per_s": rate, "rel_l2": rel,
            "loss": final_loss, "loss_initial": first_loss, "lr": args.lr, "schedule": args.schedule,
            "interior_points": INTERIOR, "boundary_points": 4 * PER_EDGE}


def throughput(args, net, dtype, device, common):
    generator = torch.Generator().manual_seed(args.seed)
    x = sample_interior(args.points, generator, dtype, device).requires_grad_(True)
    laplacian = not args.no_laplacian

    def once():
        # create_graph only where a later derivative needs it: the gradient's
        # graph for the Laplacian, nothing beyond.
        return derivatives(net, x, laplacian=laplacian, create_graph=False)

    for _ in range(args.warmup):
        once()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        out = once()
    sync(device)
    seconds = time.perf_counter() - start
    rate = args.points * args.repeats / seconds if seconds > 0 else 0.0
    what = "u, grad u, Laplacian" if laplacian else "u, grad u"
    print(f"pytorch pinn_derivatives ({what}) {args.dtype}, {common['threads']} threads: "
          f"{args.repeats} x {args.points} points in {seconds:.3f} s = {rate:,.0f} points/s",
          file=sys.stderr)
    del out
    return {"peer": "pytorch", "benchmark": "pinn_derivatives", **common, "laplacian": laplacian,
            "points": args.points, "repeats": args.repeats, "warmup": args.warmup,
            "seconds": seconds, "points_per_s": rate}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("train", "derivatives"), default="train")
    parser.add_argument("--steps", type=int, default=300,
                        help="optimizer steps of the run, warmup included (default 300)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps (train) or repetitions (derivatives) first (default 5)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: OMP_NUM_THREADS, else torch's default)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--points", type=int, default=4096, help="derivatives mode: batch size")
    parser.add_argument("--repeats", type=int, default=50, help="derivatives mode: timed repetitions")
    parser.add_argument("--no-laplacian", action="store_true",
                        help="derivatives mode: outputs and gradient only")
    parser.add_argument("--self-check", action="store_true",
                        help="assert autograd derivatives against finite differences (float64) first")
    parser.add_argument("--log-every", type=int, default=0,
                        help="train mode: loss line every N steps (default steps/10)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.steps < 0 or args.warmup < 0 or args.points < 1 or args.repeats < 1:
        parser.error("--steps/--warmup must be >= 0, --points/--repeats >= 1")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)

    net = make_net()  # initialized in float32 from the seed, whatever the run's dtype
    checks = self_check(net, args.seed) if args.self_check else None
    net = net.to(device=device, dtype=dtype)

    common = {"dtype": args.dtype, "threads": torch.get_num_threads(),
              "device": str(device), "torch": torch.__version__,
              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    if args.mode == "train":
        result = train(args, net, dtype, device, common)
    else:
        result = throughput(args, net, dtype, device, common)
    if checks is not None:
        result["self_check"] = checks
        if args.mode == "train" and args.steps > 0:
            result["self_check_trained"] = self_check(net, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
