// The demo: a 784-256-128-10 ReLU MLP trained on Fashion-MNIST with Adam
// (lr 1e-3), batch 128, 5 epochs, a fixed seed. Prints per-epoch time,
// samples/s, loss and test accuracy.
//
//   fashion_mnist_mlp [--epochs N] [--batch B] [--seed S] [--csv FILE]
//                     [--min-accuracy A]   (exit 1 if the final test accuracy is lower)
//                     [--check-memory]     (exit 1 if peak memory grew after epoch 1)
//                     [--save FILE] [--load FILE] [--checkpoint FILE] [--resume FILE]
//                                          (model files and training checkpoints: see
//                                          fashion_mnist.hpp; --epochs 0 only evaluates)

#include "fashion_mnist.hpp"

#include <cstdio>
#include <exception>

namespace {
using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  try {
    auto const args = fashion_mnist::parse(argc, argv, "fashion_mnist_mlp", false);
    return fashion_mnist::train<Mlp>(args, "fashion_mnist_mlp", "demo", 1024);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
