// A convolutional network on Fashion-MNIST, as PyTorch users write it:
// conv(1->32, 3x3, pad 1)-ReLU-maxpool 2 -> conv(32->64, 3x3, pad 1)-ReLU-
// maxpool 2 -> flatten -> Dense(3136->128)-ReLU -> Dense(128->10), Adam 1e-3,
// batch 128, a fixed seed. Prints per-epoch time, samples/s, loss and test
// accuracy. `--variant regularized` puts BatchNorm2d between each convolution
// and its ReLU and Dropout(0.5) before the last layer.
//
//   fashion_mnist_cnn [--epochs N] [--batch B] [--seed S] [--csv FILE]
//                     [--variant plain|regularized]
//                     [--min-accuracy A]   (exit 1 if the final test accuracy is lower)
//                     [--check-memory]     (exit 1 if peak memory grew after epoch 1)
//                     [--save FILE] [--load FILE] [--checkpoint FILE] [--resume FILE]
//                                          (model files and training checkpoints: see
//                                          fashion_mnist.hpp; --epochs 0 only evaluates)

#include "fashion_mnist.hpp"

#include <cstdio>
#include <exception>

namespace {
using ktnn::Image;
using ktnn::Padding;
using Cnn = ktnn::Sequential<
    ktnn::Conv2D<Image<1, 28, 28>, 32, 3, ktnn::ReLU, Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Conv2D<Image<32, 14, 14>, 64, 3, ktnn::ReLU, Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Flatten, ktnn::Dense<3136, 128, ktnn::ReLU>, ktnn::Dense<128, 10>>;
using CnnRegularized =
    ktnn::Sequential<ktnn::Conv2D<Image<1, 28, 28>, 32, 3, Padding<1>>, ktnn::BatchNorm2d,
                     ktnn::ReLU, ktnn::MaxPool2D<2>,
                     ktnn::Conv2D<Image<32, 14, 14>, 64, 3, Padding<1>>, ktnn::BatchNorm2d,
                     ktnn::ReLU, ktnn::MaxPool2D<2>, ktnn::Flatten,
                     ktnn::Dense<3136, 128, ktnn::ReLU>, ktnn::Dropout<0.5>, ktnn::Dense<128, 10>>;

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  try {
    auto const args = fashion_mnist::parse(argc, argv, "fashion_mnist_cnn", true);
    // Test batches of the training size: a larger one would grow every
    // layer's batch buffers (by far the most memory here) for evaluation.
    return args.variant == "plain"
               ? fashion_mnist::train<Cnn>(args, "fashion_mnist_cnn", "CNN", args.batch)
               : fashion_mnist::train<CnnRegularized>(args, "fashion_mnist_cnn",
                                                      "CNN (regularized)", args.batch);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
