// The demo: a 784-256-128-10 ReLU MLP trained on Fashion-MNIST with Adam
// (lr 1e-3), batch 128, 5 epochs, a fixed seed. Prints per-epoch time,
// samples/s, loss and test accuracy.
//
//   fashion_mnist_mlp [--epochs N] [--batch B] [--seed S] [--csv FILE]
//                     [--min-accuracy A]   (exit 1 if the final test accuracy is lower)
//                     [--check-memory]     (exit 1 if peak memory grew after epoch 1)

#include <ktnn/ktnn.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {
using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;

struct Arguments {
  int epochs = 5;
  int batch = 128;
  std::uint64_t seed = 42;
  std::string csv;
  double min_accuracy = 0;
  bool check_memory = false;
};

/// Peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    std::string const flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ktnn::Error("fashion_mnist_mlp: " + flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--epochs")
      a.epochs = std::stoi(value());
    else if (flag == "--batch")
      a.batch = std::stoi(value());
    else if (flag == "--seed")
      a.seed = std::stoull(value());
    else if (flag == "--csv")
      a.csv = value();
    else if (flag == "--min-accuracy")
      a.min_accuracy = std::stod(value());
    else if (flag == "--check-memory")
      a.check_memory = true;
    else if (flag.rfind("--kokkos", 0) == 0)
      continue;
    else
      throw ktnn::Error("fashion_mnist_mlp: unknown argument '" + flag + "'");
  }
  return a;
}
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  try {
    auto const args = parse(argc, argv);
    auto train = ktnn::data::load_fashion_mnist<float>("train");
    auto test = ktnn::data::load_fashion_mnist<float>("test");
    std::cout << "ktnn " << ktnn::version << " demo: " << Mlp::name() << "\n"
              << "Fashion-MNIST " << train.size() << " train / " << test.size()
              << " test images, batch " << args.batch << ", Adam lr 1e-3, " << args.epochs
              << " epochs, seed " << args.seed << ", " << Kokkos::DefaultExecutionSpace::name()
              << " with " << Kokkos::DefaultExecutionSpace().concurrency() << " threads\n";

    ktnn::Model<Mlp, float> model(args.seed);
    ktnn::Adam optimizer(model, {.lr = 1e-3f});
    ktnn::CrossEntropy loss;
    ktnn::data::DataLoader loader(train,
                                  {.batch_size = args.batch, .shuffle = true, .seed = args.seed});

    double test_accuracy = 0;
    std::vector<double> peak_rss;
    ktnn::FitOptions options;
    options.epochs = args.epochs;
    options.out = &std::cout;  // the library prints nothing unless asked
    options.csv_path = args.csv;
    options.on_epoch_end.push_back([&](ktnn::EpochMetrics const&) {
      auto const result = ktnn::evaluate(model, loss, test);
      test_accuracy = result.accuracy();
      peak_rss.push_back(peak_rss_mib());
      std::printf("          test loss %.4f  test acc %.4f  peak memory %.1f MiB\n",
                  result.mean_loss(), test_accuracy, peak_rss.back());
      std::fflush(stdout);
    });
    auto const history = ktnn::fit(model, loss, optimizer, loader, options);

    double seconds = 0, samples = 0;
    for (auto const& m : history) {
      seconds += m.seconds;
      samples += double(m.samples);
    }
    std::printf("trained %d epochs in %.2f s: %.0f samples/s, final test accuracy %.4f\n",
                args.epochs, seconds, samples / seconds, test_accuracy);
    // Workspace is allocated for the first batch and reused: peak memory must
    // not grow after the first epoch.
    if (args.check_memory && peak_rss.size() > 1 && peak_rss.back() > peak_rss.front() + 1.0) {
      std::fprintf(stderr,
                   "fashion_mnist_mlp: peak memory grew from %.1f MiB after epoch 1 to %.1f MiB\n",
                   peak_rss.front(), peak_rss.back());
      return 1;
    }
    if (test_accuracy < args.min_accuracy) {
      std::fprintf(stderr, "fashion_mnist_mlp: test accuracy %.4f is below the required %.4f\n",
                   test_accuracy, args.min_accuracy);
      return 1;
    }
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
