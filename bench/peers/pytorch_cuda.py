#!/usr/bin/env python3
"""ktnn's GPU peers in PyTorch, run by `tools/gpu run` on the same GPU as ktnn's
binaries, in the same call, so every ratio is measured side by side.

  pytorch_cuda.py device --json FILE        the GPU, driver, clocks, power limit (NVML)
  pytorch_cuda.py demo [--epochs N] [--batch B] [--seed S] [--data DIR] [--device D]
                       [--model mlp|cnn]    the demo (784-256-128-10 ReLU MLP, Adam lr
                                            1e-3, batch 128, Fashion-MNIST) on the GPU,
                                            or the CNN of examples/fashion_mnist_cnn
  pytorch_cuda.py bench [--min-time S] [--json FILE] [--device D] [--quick]
                                            ktnn_bench's training steps on the GPU
  pytorch_cuda.py energy --json FILE -- CMD [ARG...]
                                            runs CMD; writes the GPU energy it drew (NVML)

The demo keeps the whole dataset on the GPU and gathers each shuffled batch
there, as ktnn's DataLoader does; samples/s counts the training loop only, as
ktnn::fit counts it. Both the demo and the training steps use Adam with
fused=True (one kernel over all parameters, as ktnn's Adam) and plain FP32
matrix products (no TF32), as ktnn_bench's cuBLAS peer. A training step is
zero_grad, forward, loss, backward, optimizer step, synchronized after each
step as ktnn_bench fences after each: samples/s, GEMM FLOP/s (ktnn_bench's
count) and NVML energy (J per million samples, mean W) over the timed loop.

--device (default cuda) exists to check the scripts on a CPU (--device cpu);
--quick times only the smallest batch of each model.

Energy is NVML's total-energy counter (millijoules; Volta and newer) of the
device CUDA runs on, read through the driver's libnvidia-ml.so.1.
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Nvml:
    """The few NVML calls the peers need, through ctypes (no pynvml needed)."""

    def __init__(self, bus_id=None):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        if self.lib.nvmlInit_v2() != 0:
            raise RuntimeError("nvmlInit failed")
        self.handle = ctypes.c_void_p()
        if bus_id:
            rc = self.lib.nvmlDeviceGetHandleByPciBusId_v2(bus_id.encode(), ctypes.byref(self.handle))
        else:
            rc = self.lib.nvmlDeviceGetHandleByIndex_v2(first_visible_index(), ctypes.byref(self.handle))
        if rc != 0:
            raise RuntimeError(f"no NVML device handle (error {rc})")

    def _uint(self, fn, *args):
        value = ctypes.c_uint()
        return value.value if getattr(self.lib, fn)(self.handle, *args, ctypes.byref(value)) == 0 else None

    def energy_mj(self):
        value = ctypes.c_ulonglong()
        if self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(value)) != 0:
            return None
        return value.value

    def info(self):
        name = ctypes.create_string_buffer(96)
        self.lib.nvmlDeviceGetName(self.handle, name, 96)
        driver = ctypes.create_string_buffer(80)
        self.lib.nvmlSystemGetDriverVersion(driver, 80)
        cuda = ctypes.c_int()
        self.lib.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(cuda))

        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                        ("used", ctypes.c_ulonglong)]
        memory = Memory()
        self.lib.nvmlDeviceGetMemoryInfo(self.handle, ctypes.byref(memory))
        graphics, sm, mem = 0, 1, 2  # nvmlClockType_t
        power_limit = self._uint("nvmlDeviceGetEnforcedPowerLimit")
        return {
            "name": name.value.decode(errors="replace"),
            "driver": driver.value.decode(errors="replace"),
            "cuda_driver": f"{cuda.value // 1000}.{cuda.value % 1000 // 10}",
            "memory_bytes": memory.total,
            "clocks_mhz": {
                "sm": self._uint("nvmlDeviceGetClockInfo", sm),
                "sm_max": self._uint("nvmlDeviceGetMaxClockInfo", sm),
                "mem": self._uint("nvmlDeviceGetClockInfo", mem),
                "mem_max": self._uint("nvmlDeviceGetMaxClockInfo", mem),
                "graphics": self._uint("nvmlDeviceGetClockInfo", graphics),
                "sm_applications": self._uint("nvmlDeviceGetApplicationsClock", sm),
                "mem_applications": self._uint("nvmlDeviceGetApplicationsClock", mem),
            },
            "power_limit_w": power_limit / 1000 if power_limit is not None else None,
            "temperature_c": self._uint("nvmlDeviceGetTemperature", 0),
            "persistence_mode": self._uint("nvmlDeviceGetPersistenceMode"),
            "energy_counter_mj": self.energy_mj(),
        }


def first_visible_index():
    """NVML ignores CUDA_VISIBLE_DEVICES: take its first entry when it is an index."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def torch_nvml(torch):
    """NVML on the device torch runs on (matched by PCI bus id), or None."""
    try:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        bus = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
        return Nvml(bus)
    except Exception:  # older torch without the PCI ids, or no NVML
        try:
            return Nvml()
        except Exception:
            return None


class EnergyMeter:
    def __init__(self, nvml):
        self.nvml, self.start_mj = nvml, None

    def start(self):
        self.start_mj = self.nvml.energy_mj() if self.nvml else None
        self.t0 = time.perf_counter()

    def stop(self, samples):
        seconds = time.perf_counter() - self.t0
        end = self.nvml.energy_mj() if self.nvml else None
        if self.start_mj is None or end is None or end <= self.start_mj or seconds <= 0:
            return {}
        joules = (end - self.start_mj) * 1e-3
        return {"J/Msample": joules / samples * 1e6, "W": joules / seconds}


def synchronize(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def device_name(torch, device):
    return torch.cuda.get_device_name() if device.type == "cuda" else str(device)


def plain_fp32(torch):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


# ------------------------------------------------------------------ device
def cmd_device(args):
    info = {}
    try:
        info.update(Nvml().info())
    except Exception as e:  # no driver library: say so, keep going
        info["nvml_error"] = str(e)
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["sm_count"] = props.multi_processor_count
            info["compute_capability"] = f"{props.major}.{props.minor}"
            info.setdefault("name", props.name)
            info.setdefault("memory_bytes", props.total_memory)
    except Exception as e:
        info["torch_error"] = str(e)
    text = json.dumps(info, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


# ------------------------------------------------------------------ demo
def cmd_demo(args):
    import torch
    from torch import nn
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True  # no __pycache__ beside the peers
    from pytorch_mlp import load_split

    plain_fp32(torch)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    x_train, y_train = (t.to(device) for t in load_split(args.data, "train"))
    x_test, y_test = (t.to(device) for t in load_split(args.data, "t10k"))
    if args.model == "cnn":
        model = cnn(nn).to(device)
        x_train, x_test = (x.reshape(-1, 1, 28, 28) for x in (x_train, x_test))
    else:
        model = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)

    n = len(x_train)
    epoch_seconds = []
    for epoch in range(args.epochs):
        # The epoch's order is drawn and moved to the GPU before the clock starts.
        order = torch.randperm(n, generator=generator).to(device)
        model.train()
        synchronize(torch, device)
        start = time.perf_counter()
        for begin in range(0, n, args.batch):  # the last batch may be partial
            index = order[begin:begin + args.batch]
            xb, yb = x_train[index], y_train[index]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        synchronize(torch, device)
        epoch_seconds.append(time.perf_counter() - start)
        print(f"pytorch epoch {epoch + 1}/{args.epochs}: {epoch_seconds[-1]:.3f} s, "
              f"last batch loss {loss.item():.4f}", file=sys.stderr)

    model.eval()
    with torch.no_grad():
        correct = (model(x_test).argmax(dim=1) == y_test).sum().item()
    total = sum(epoch_seconds)
    print(json.dumps({
        "peer": f"pytorch-{device.type}",
        "model": args.model,
        "samples_per_second": n * args.epochs / total if total > 0 else 0.0,
        "epoch_seconds": epoch_seconds,
        "test_accuracy": correct / len(x_test),
        "epochs": args.epochs,
        "batch": args.batch,
        "adam": "fused",
        "device": device_name(torch, device),
        "torch_version": torch.__version__,
    }))
    return 0


# ------------------------------------------------------------------ bench
# ktnn_bench's training steps on a device (bench/bench_training.cpp): name,
# layer widths, loss, batches.
MODELS = [
    ("mlp_784_256_128_10", [784, 256, 128, 10], "cross_entropy", [128, 1024, 16384]),
    ("mlp_64x4", [64, 64, 64, 64, 64, 64], "mse", [16384, 262144]),
    ("cnn_fashion_mnist", None, "cross_entropy", [128]),
]
# bench/bench_conv.cpp's CNN: multiply-adds per sample of conv1, conv2 and the
# two Dense layers.
CNN_MACS = (32 * 28 * 28 * 9, 64 * 14 * 14 * 32 * 9, 3136 * 128 + 128 * 10)


def cnn(nn):
    """bench/bench_conv.cpp's Cnn and examples/fashion_mnist_cnn's plain network."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def step_flops(widths, batch):
    """ktnn_bench's count: forward and weight-gradient GEMMs of every layer, and
    input-gradient GEMMs of every layer but the first."""
    if widths is None:
        conv1, conv2, dense = CNN_MACS
        return 2.0 * batch * (2 * conv1 + 3 * (conv2 + dense))
    macs = [a * b for a, b in zip(widths, widths[1:])]
    return 2.0 * batch * (2 * sum(macs) + sum(macs[1:]))


def cmd_bench(args):
    import torch
    from torch import nn

    plain_fp32(torch)
    device = torch.device(args.device)
    nvml = torch_nvml(torch) if device.type == "cuda" else None
    results = []
    for name, widths, loss_name, batches in MODELS:
        for batch in batches[:1] if args.quick else batches:
            torch.manual_seed(42)
            if widths is None:
                model = cnn(nn).to(device)
                x = torch.rand(batch, 1, 28, 28, device=device)
            else:
                layers = []
                for i, (a, b) in enumerate(zip(widths, widths[1:])):
                    layers.append(nn.Linear(a, b))
                    if i + 2 < len(widths):
                        layers.append(nn.ReLU())
                model = nn.Sequential(*layers).to(device)
                x = torch.rand(batch, widths[0], device=device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
            if loss_name == "cross_entropy":
                loss_fn = nn.CrossEntropyLoss()
                target = torch.randint(0, 10, (batch,), device=device)
            else:
                loss_fn = nn.MSELoss()
                target = torch.rand(batch, widths[-1], device=device) * 2 - 1

            def step():
                optimizer.zero_grad()
                loss_fn(model(x), target).backward()
                optimizer.step()

            for _ in range(3):  # warm-up: allocations, kernel selection
                step()
            synchronize(torch, device)
            meter = EnergyMeter(nvml)
            meter.start()
            iterations, start = 0, time.perf_counter()
            while True:
                step()
                synchronize(torch, device)
                iterations += 1
                elapsed = time.perf_counter() - start
                if elapsed >= args.min_time and iterations >= 10:
                    break
            row = {"name": f"train_step/{name}/batch:{batch}", "iterations": iterations,
                   "seconds_per_step": elapsed / iterations,
                   "samples/s": batch * iterations / elapsed,
                   "FLOP/s": step_flops(widths, batch) * iterations / elapsed}
            row.update(meter.stop(batch * iterations))
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    report = {"torch": torch.__version__, "device": device_name(torch, device),
              "adam": "fused", "tf32": False, "min_time": args.min_time, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report))
    return 0


# ------------------------------------------------------------------ energy
def cmd_energy(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("energy: name a command after --")
    try:
        nvml = Nvml()
    except Exception as e:
        nvml = None
        print(f"pytorch_cuda.py energy: no NVML ({e}); energy not measured", file=sys.stderr)
    start_mj = nvml.energy_mj() if nvml else None
    start = time.perf_counter()
    rc = subprocess.call(command)
    seconds = time.perf_counter() - start
    end_mj = nvml.energy_mj() if nvml else None
    result = {"command": command, "exit_code": rc, "seconds": seconds}
    if start_mj is not None and end_mj is not None and end_mj > start_mj:
        result["joules"] = (end_mj - start_mj) * 1e-3
        result["mean_watts"] = result["joules"] / seconds
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    return rc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("device")
    p.add_argument("--json")
    p = sub.add_parser("demo")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data",
                   default=os.environ.get("KTNN_DATA_DIR") or "/usr/share/datasets/fashion-mnist")
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                   help="the MLP demo's network, or examples/fashion_mnist_cnn's plain one")
    p = sub.add_parser("bench")
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--json")
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true")
    p = sub.add_parser("energy")
    p.add_argument("--json", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    return {"device": cmd_device, "demo": cmd_demo, "bench": cmd_bench,
            "energy": cmd_energy}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
