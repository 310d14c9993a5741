#!/usr/bin/env python3
"""ktnn <-> PyTorch interop, checked against real PyTorch.

For every architecture of interop_driver (tests/interop/interop_driver.cpp)
this builds the equivalent torch.nn.Sequential and checks, with the same
inputs on both sides:

  torch->ktnn  the model trained a few SGD steps in PyTorch (weights and
               running statistics off their initial values), its state_dict
               saved with safetensors, read by ktnn::load: ktnn's predictions
               (batched and per sample, on every execution space the driver
               has) against model.eval()'s
  ktnn->torch  a file of ktnn::save read by load_state_dict(strict=True):
               PyTorch's predictions against those of the ktnn model that
               wrote it, and of a ktnn model that reads it back; the file's
               names, shapes and dtypes are the state_dict's
  f64          both directions again with double models and F64 files
  bf16, f16    a PyTorch state_dict in BF16 / F16 read by a float ktnn model
               (against the same rounded weights in PyTorch, and against the
               unrounded model within the format's precision), and
               ktnn::save with dtype BF16 / F16 read by PyTorch
  detection    each floating tensor of the PyTorch file in turn permuted
               (reversed): ktnn's predictions must then miss PyTorch's by more
               than the tolerance, or the comparison above could not fail

Errors are relative to the output's scale: max |ktnn - torch| / max |torch|.
The maximum per architecture and check is printed as a table. Exit status 0
when every check holds, 1 otherwise, 77 (ctest: skipped) when torch or
safetensors cannot be imported.

The README's snippet (below) is what the checks run: every file of ktnn's
goes into PyTorch through load_ktnn_file, PyTorch's F32 and F64 files are
written by save_for_ktnn (the BF16, F16 and permuted ones are state_dicts
changed first), and the snippet's model is the architecture demo_mlp.
"""

import argparse
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import safetensors.torch
    from torch import nn
except ImportError as error:  # only where PyTorch is not installed
    print(f"SKIPPED: cannot import torch / safetensors ({error})")
    sys.exit(77)


# --- The README's snippet -------------------------------------------------
# import safetensors.torch
# from torch import nn  # ktnn's demo Mlp: Dense<784, 256, ReLU>, Dense<256, 128>, ReLU, Dense<128, 10>
# mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
# mlp.load_state_dict(safetensors.torch.load_file("mlp.safetensors"), strict=True)  # from ktnn::save
# safetensors.torch.save_file(mlp.state_dict(), "mlp.safetensors")  # for ktnn::load
#
# Its model is the architecture demo_mlp; its two calls are load_ktnn_file and
# save_for_ktnn, which the checks below run.


def demo_mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def load_ktnn_file(model, path):
    model.load_state_dict(safetensors.torch.load_file(path), strict=True)


def save_for_ktnn(model, path):
    safetensors.torch.save_file(model.state_dict(), path)


# --- The twins of interop_driver's architectures ----------------------------

class Residual(nn.Module):
    """ktnn::Residual: y = x + block(x), tensors "block.<i>.*"."""

    def __init__(self, *layers):
        super().__init__()
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x)


class Standardize(nn.Module):
    """ktnn::Standardize<N>: (x - mean) / std, buffers "mean" and "std"."""

    def __init__(self, n):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def forward(self, x):
        return (x - self.mean) / self.std


class Unstandardize(Standardize):
    """ktnn::Unstandardize<N>: x * std + mean."""

    def forward(self, x):
        return x * self.std + self.mean


def global_avg_pool():
    """ktnn::GlobalAvgPool2D is one module in ktnn's numbering: a Sequential
    of two modules without tensors keeps the numbering of what follows."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "leaky_relu_0p2": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "elu_0p5": lambda: nn.ELU(0.5),
}


def fused_mlp(act):
    return lambda: nn.Sequential(nn.Linear(6, 12), act(), nn.Linear(12, 12), act(),
                                 nn.Linear(12, 3))


def separate_mlp(act):
    return lambda: nn.Sequential(nn.Linear(6, 12), act(), nn.Linear(12, 3))


ARCHITECTURES = {}
for _name, _act in ACTIVATIONS.items():
    ARCHITECTURES["fused_" + _name] = ((6,), fused_mlp(_act))
    ARCHITECTURES["separate_" + _name] = ((6,), separate_mlp(_act))
ARCHITECTURES.update({
    "softmax": ((6,), lambda: nn.Sequential(
        nn.Linear(6, 12), nn.Identity(), nn.Linear(12, 5), nn.Tanh(), nn.Softmax(dim=1))),
    "log_softmax": ((6,), lambda: nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 5), nn.LogSoftmax(dim=1))),
    "batchnorm1d": ((6,), lambda: nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 16),
        nn.SiLU(), nn.BatchNorm1d(16), nn.Linear(16, 3))),
    "layernorm": ((6,), lambda: nn.Sequential(
        nn.Linear(6, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 16), nn.Tanh(),
        nn.LayerNorm(16), nn.Linear(16, 3))),
    "standardize": ((6,), lambda: nn.Sequential(
        Standardize(6), nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 2), Unstandardize(2))),
    "cnn": ((2, 12, 12), lambda: nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ELU(), nn.AvgPool2d(2, stride=1), nn.Flatten(),
        nn.Linear(32, 10), nn.ReLU(), nn.Dropout(0.2), nn.Linear(10, 4))),
    "cnn_pool_options": ((1, 11, 11), lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, dilation=2), nn.SiLU(), nn.MaxPool2d(2, stride=1, dilation=2),
        nn.MaxPool2d(3, stride=2, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 2), nn.Tanh(),
        nn.AvgPool2d(2, padding=1), global_avg_pool(), nn.Linear(5, 3))),
    "residual": ((3, 8, 8), lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        Residual(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                 nn.Conv2d(4, 4, 3, padding=1)),
        nn.ReLU(), global_avg_pool(), nn.Linear(4, 3))),
    "demo_mlp": ((784,), demo_mlp),
})

# Relative errors allowed: float and double arithmetic in a different order
# than PyTorch's; for BF16 / F16 weights against the unrounded model, the
# format's rounding of every weight (unit roundoff 2^-8 and 2^-11) carried
# through a few layers.
TOLERANCE = {"float": 1e-5, "double": 1e-12}
FORMAT_TOLERANCE = {"BF16": 4e-2, "F16": 5e-3}
TORCH_DTYPE = {"BF16": torch.bfloat16, "F16": torch.float16}
BATCH = 13
# The training-mode forwards of `interop_driver save`: BatchNorm's
# num_batches_tracked in its files.
DRIVER_TRAINING_FORWARDS = 3


class Driver:
    def __init__(self, path, work):
        self.path = path
        self.work = work
        self.env = dict(os.environ)
        self.env.setdefault("OMP_PROC_BIND", "false")

    def __call__(self, *args):
        result = subprocess.run([self.path, *map(str, args)], env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"interop_driver {' '.join(map(str, args))} exited "
                               f"{result.returncode}:\n{result.stderr}")
        return result.stdout

    def file(self, *parts):
        return os.path.join(self.work, "_".join(parts) + ".safetensors")


def relative_error(ktnn_values, torch_values):
    a = ktnn_values.double()
    b = torch_values.detach().double()
    assert a.shape == b.shape, f"shapes differ: ktnn {tuple(a.shape)}, torch {tuple(b.shape)}"
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / (scale if scale > 0 else 1.0)


def worst(outputs, reference):
    """The largest error over every tensor of a driver output file."""
    assert outputs, "the driver wrote no predictions"
    return max(relative_error(values, reference) for values in outputs.values())


def make_model(arch, dtype, seed):
    torch.manual_seed(seed)
    return ARCHITECTURES[arch][1]().to(dtype)


def inputs(arch, dtype, seed, rows=BATCH):
    g = torch.Generator().manual_seed(seed)
    shape = ARCHITECTURES[arch][0]
    return (torch.randn(rows, *shape, generator=g, dtype=torch.float64) * 1.5 + 0.3).to(dtype)


def train_briefly(model, arch, dtype, seed):
    """A few SGD steps on random data in training mode: every weight moves,
    BatchNorm's running statistics and batch counts move; then random
    standardisation buffers (no optimizer touches those)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for step in range(5):
        x = inputs(arch, dtype, seed * 100 + step, rows=16)
        y = torch.randn(model(x).shape, dtype=dtype)
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Standardize):
                m.mean.uniform_(-1, 1)
                m.std.uniform_(0.5, 2)
    model.eval()


def predict(model, x):
    with torch.no_grad():
        return model.eval()(x)


def check_file_matches_state_dict(path, model):
    """The file holds exactly the state_dict's names, shapes and dtypes."""
    tensors = safetensors.torch.load_file(path)
    state = model.state_dict()
    assert set(tensors) == set(state), f"names differ: {sorted(set(tensors) ^ set(state))}"
    for name, value in state.items():
        assert tensors[name].shape == value.shape, f"{name}: shape {tuple(tensors[name].shape)}"
        assert tensors[name].dtype == value.dtype, f"{name}: dtype {tensors[name].dtype}"


def write_inputs(path, x):
    safetensors.torch.save_file({"input": x.contiguous()}, path)


def check_architecture(driver, arch, index):
    """Every check of one architecture: {check: max relative error} and a
    list of failures."""
    errors, failures = {}, []

    def expect(check, error, tolerance):
        errors[check] = error
        if not error <= tolerance:  # NaN fails too
            failures.append(f"{arch}: {check}: relative error {error:.3g} > {tolerance:g}")

    for scalar, dtype in (("float", torch.float32), ("double", torch.float64)):
        flag = ["--double"] if scalar == "double" else []
        tol = TOLERANCE[scalar]
        tag = "" if scalar == "float" else "f64 "
        x = inputs(arch, dtype, 1000 + index)
        x_file = driver.file(arch, scalar, "inputs")
        write_inputs(x_file, x)

        # PyTorch -> ktnn.
        model = make_model(arch, dtype, seed=index)
        train_briefly(model, arch, dtype, seed=index + 1)
        reference = predict(model, x)
        weights = driver.file(arch, scalar, "from_torch")
        save_for_ktnn(model, weights)
        out = driver.file(arch, scalar, "from_torch_out")
        driver("predict", arch, weights, x_file, out, *flag)
        expect(tag + "torch->ktnn", worst(safetensors.torch.load_file(out), reference), tol)

        # ktnn -> PyTorch: the saving model's own predictions, and a model
        # that loads the file back.
        saved = driver.file(arch, scalar, "from_ktnn")
        own = driver.file(arch, scalar, "from_ktnn_own")
        driver("save", arch, saved, "--seed", 7 + index, "--inputs", x_file, "--outputs", own,
               *flag)
        twin = make_model(arch, dtype, seed=index)
        load_ktnn_file(twin, saved)
        check_file_matches_state_dict(saved, twin)
        for name, value in twin.state_dict().items():
            if name.endswith("num_batches_tracked") and value.item() != DRIVER_TRAINING_FORWARDS:
                failures.append(f"{arch}: {name} is {value.item()} in ktnn's file, expected "
                                f"{DRIVER_TRAINING_FORWARDS}")
        reference = predict(twin, x)
        reloaded = driver.file(arch, scalar, "from_ktnn_reloaded")
        driver("predict", arch, saved, x_file, reloaded, *flag)
        expect(tag + "ktnn->torch", max(worst(safetensors.torch.load_file(own), reference),
                                        worst(safetensors.torch.load_file(reloaded), reference)),
               tol)

        if scalar == "double":
            continue
        trained = model

        # Half formats, PyTorch -> ktnn: the trained state_dict rounded.
        for fmt in ("BF16", "F16"):
            half = {k: v.to(TORCH_DTYPE[fmt]) if v.is_floating_point() else v
                    for k, v in trained.state_dict().items()}
            weights = driver.file(arch, fmt, "from_torch")
            safetensors.torch.save_file(half, weights)
            out = driver.file(arch, fmt, "from_torch_out")
            driver("predict", arch, weights, x_file, out)
            got = safetensors.torch.load_file(out)
            rounded = make_model(arch, dtype, seed=index)
            rounded.load_state_dict(half, strict=True)  # converted to float as it is copied
            expect(f"{fmt.lower()} torch->ktnn", worst(got, predict(rounded, x)), tol)
            expect(f"{fmt.lower()} vs f32", worst(got, predict(trained, x)),
                   FORMAT_TOLERANCE[fmt])

        # Half formats, ktnn -> PyTorch.
        for fmt in ("BF16", "F16"):
            saved = driver.file(arch, fmt, "from_ktnn")
            own = driver.file(arch, fmt, "from_ktnn_own")
            driver("save", arch, saved, "--seed", 7 + index, "--dtype", fmt, "--inputs", x_file,
                   "--outputs", own)
            stored = safetensors.torch.load_file(saved)
            for name, value in stored.items():
                want = torch.int64 if name.endswith("num_batches_tracked") else TORCH_DTYPE[fmt]
                if value.dtype != want:
                    failures.append(f"{arch}: {fmt} file: {name} is {value.dtype}, not {want}")
            twin = make_model(arch, dtype, seed=index)
            load_ktnn_file(twin, saved)
            reference = predict(twin, x)
            reloaded = driver.file(arch, fmt, "from_ktnn_reloaded")
            driver("predict", arch, saved, x_file, reloaded)
            expect(f"{fmt.lower()} ktnn->torch", worst(safetensors.torch.load_file(reloaded),
                                                       reference), tol)
            expect(f"{fmt.lower()} ktnn->torch vs f32",
                   worst(safetensors.torch.load_file(own), reference), FORMAT_TOLERANCE[fmt])

        # Detection: each floating tensor reversed in turn must be noticed.
        reference = predict(trained, x)
        state = trained.state_dict()
        smallest, tried = float("inf"), 0
        for name, value in state.items():
            if not value.is_floating_point():
                continue
            permuted = value.flatten().flip(0).reshape(value.shape)
            if torch.equal(permuted, value):
                continue
            broken = dict(state)
            broken[name] = permuted.contiguous()
            weights = driver.file(arch, "permuted")
            safetensors.torch.save_file(broken, weights)
            out = driver.file(arch, "permuted_out")
            driver("predict", arch, weights, x_file, out)
            got = safetensors.torch.load_file(out)
            error = min(relative_error(v, reference) for v in got.values())
            smallest = min(smallest, error)
            tried += 1
            if not error > tol:
                failures.append(f"{arch}: '{name}' reversed went unnoticed (error {error:.3g})")
        errors["permuted (min)"] = smallest
        errors["tensors permuted"] = tried
        if tried == 0:
            failures.append(f"{arch}: no tensor to permute")
    return errors, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", required=True, help="path of interop_driver")
    parser.add_argument("--work-dir", help="where the files go (default: a temporary folder)")
    parser.add_argument("--only", nargs="*", help="these architectures only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work_dir or tempfile.mkdtemp(prefix="ktnn_interop_")
    os.makedirs(work, exist_ok=True)
    driver = Driver(args.driver, work)

    listed = {}
    for line in driver("list").splitlines():
        name, in_shape, out_shape = line.split("\t")
        listed[name] = (tuple(int(v) for v in in_shape.split(",")),
                        tuple(int(v) for v in out_shape.split(",")))
    if set(listed) != set(ARCHITECTURES):
        print("FAILED: interop_driver's architectures and this script's differ: "
              f"{sorted(set(listed) ^ set(ARCHITECTURES))}")
        return 1
    for name, (in_shape, out_shape) in listed.items():
        if ARCHITECTURES[name][0] != in_shape:
            print(f"FAILED: {name}: input shape {in_shape} in ktnn, "
                  f"{ARCHITECTURES[name][0]} here")
            return 1
    spaces = driver("spaces").split()
    print(f"torch {torch.__version__}, safetensors; ktnn execution spaces: {', '.join(spaces)}")
    print(f"relative error = max|ktnn - torch| / max|torch|; tolerance {TOLERANCE['float']:g} "
          f"(float), {TOLERANCE['double']:g} (double), "
          f"{FORMAT_TOLERANCE['BF16']:g} / {FORMAT_TOLERANCE['F16']:g} (BF16 / F16 against F32)")

    # Column titles: t->k is torch->ktnn, k->t ktnn->torch; "~f32" the half
    # format's predictions against the unrounded float model's.
    columns = {"torch->ktnn": "t->k", "ktnn->torch": "k->t", "f64 torch->ktnn": "f64 t->k",
               "f64 ktnn->torch": "f64 k->t", "bf16 torch->ktnn": "bf16 t->k",
               "bf16 ktnn->torch": "bf16 k->t", "bf16 vs f32": "bf16~f32",
               "bf16 ktnn->torch vs f32": "bf16 k~f32", "f16 torch->ktnn": "f16 t->k",
               "f16 ktnn->torch": "f16 k->t", "f16 vs f32": "f16~f32",
               "f16 ktnn->torch vs f32": "f16 k~f32", "permuted (min)": "perm min"}
    print("columns: t->k PyTorch's file in ktnn, k->t ktnn's file in PyTorch, ~f32 a half "
          "format's\npredictions against the F32 model's, perm min the smallest error with one "
          "tensor reversed")
    print(f"{'architecture':<24}" + "".join(f"{c:>11}" for c in columns.values()))
    failures = []
    names = args.only if args.only else list(ARCHITECTURES)
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        print(f"FAILED: no architecture named {unknown}")
        return 1
    permuted = 0
    for index, arch in enumerate(names):
        try:
            errors, failed = check_architecture(driver, arch, index)
        except (AssertionError, RuntimeError) as error:
            errors, failed = {}, [f"{arch}: {error}"]
        failures += failed
        permuted += errors.get("tensors permuted", 0)
        print(f"{arch:<24}" + "".join(
            f"{errors[c]:>11.1e}" if c in errors else f"{'-':>11}" for c in columns), flush=True)
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for f in failures:
            print("  " + f)
        return 1
    print(f"\nOK: {len(names)} architectures, every check within tolerance; each of the "
          f"{permuted} tensors reversed in turn was detected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
