#!/usr/bin/env bash
# A Fashion-MNIST example stopped after one epoch and resumed from its
# checkpoint ends with the parameters of the run that never stopped (the same
# "parameters fingerprint", every bit of every parameter); the model it saves
# evaluates to the same fingerprint and test accuracy with --epochs 0 --load;
# and, for the MLP where python3 has torch, PyTorch's own model takes the
# checkpoint's weights (its ktnn.* entries dropped) with
# load_state_dict(strict=True).
#
#   resume_example.sh EXAMPLE WORKDIR [FLAGS...]   (FLAGS go to every run)
#
# RESUME_LAUNCHER, when set, starts every run (e.g. "mpiexec -n 2" for
# fashion_mnist_mpi).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 EXAMPLE WORKDIR [FLAGS...]" >&2; exit 2; }
example=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") work=$2
shift 2
mkdir -p "$work"
cd "$work"
rm -f checkpoint.st model.st ./*.log

fail() { echo "resume_example: $*" >&2; exit 1; }
run() {  # LOG ARGS...: runs the example, its output to LOG
  local log=$1
  shift
  # shellcheck disable=SC2086 # the launcher is words
  ${RESUME_LAUNCHER:-} "$example" "$@" > "$log" 2>&1 || {
    cat "$log" >&2
    fail "'${RESUME_LAUNCHER:+$RESUME_LAUNCHER }$example $*' failed"
  }
}
value() {  # LOG PATTERN: the first group of the sed pattern in LOG
  sed -n "s/$2/\\1/p" "$1" | tail -n 1
}

run straight.log --epochs 2 "$@"
run first.log --epochs 1 --checkpoint checkpoint.st "$@"
[ -s checkpoint.st ] || fail "--checkpoint wrote no file"
run resumed.log --epochs 2 --resume checkpoint.st --save model.st "$@"
grep -q "resumed from checkpoint.st after epoch 1" resumed.log || fail "no resume line"
grep -q "^trained 1 epochs in" resumed.log || fail "the resumed run did not train one epoch"
grep -q "^epoch 2/2 " resumed.log || fail "the resumed epoch is not numbered 2/2"

fingerprint='^parameters fingerprint \([0-9a-f]*\)$'
straight=$(value straight.log "$fingerprint")
first=$(value first.log "$fingerprint")
resumed=$(value resumed.log "$fingerprint")
[ -n "$straight" ] || fail "no fingerprint in the straight run's output"
echo "straight 2 epochs: $straight; 1 epoch: $first; 1 + resumed 1: $resumed"
[ "$straight" != "$first" ] || fail "one epoch and two give the same parameters"
[ "$straight" = "$resumed" ] || fail "resumed run ends with other parameters than the straight one"

accuracy='.*final test accuracy \([0-9.]*\)$'
run evaluated.log --epochs 0 --load model.st "$@"
[ "$(value evaluated.log "$fingerprint")" = "$straight" ] || fail "--load model.st: other parameters"
evaluated=$(value evaluated.log '^evaluated without training: .*test acc \([0-9.]*\)$')
[ "$evaluated" = "$(value resumed.log "$accuracy")" ] ||
  fail "--epochs 0 --load: test accuracy $evaluated, the resumed run ended at $(value resumed.log "$accuracy")"

# The resumed checkpoint again: nothing left to train, the same parameters.
run again.log --epochs 1 --resume checkpoint.st "$@"
[ "$(value again.log "$fingerprint")" = "$first" ] || fail "--resume at its last epoch changed the model"

if [ "$(basename "$example")" != fashion_mnist_mlp ] && [ "$(basename "$example")" != fashion_mnist_mpi ]; then
  echo "the PyTorch check knows the MLP's layers only: skipped"
elif command -v python3 > /dev/null && python3 -c "import torch, safetensors" 2> /dev/null; then
  python3 - checkpoint.st <<'PY'
import sys
import torch
from safetensors.torch import load_file

tensors = load_file(sys.argv[1])
weights = {k: v for k, v in tensors.items() if not k.startswith("ktnn.")}
if len(weights) == len(tensors):
    sys.exit("the checkpoint holds no ktnn.* optimizer state")
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                          torch.nn.ReLU(), torch.nn.Linear(128, 10))
net.load_state_dict(weights, strict=True)
# Adam's moments sit beside each parameter, under its name and of its shape.
for name, p in net.named_parameters():
    for buffer in ("exp_avg", "exp_avg_sq"):
        if tensors[f"ktnn.optimizer.{name}.{buffer}"].shape != p.shape:
            sys.exit(f"ktnn.optimizer.{name}.{buffer}: shape differs from {name}'s")
print(f"PyTorch loaded the checkpoint's {len(weights)} weights (strict), "
      f"and its {len(tensors) - len(weights)} optimizer tensors have the parameters' shapes")
PY
else
  echo "no python3 with torch and safetensors: the PyTorch check is skipped"
fi
echo "resume_example: OK"
