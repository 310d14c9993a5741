#pragma once
// What the Fashion-MNIST examples share: their command line, the training
// run (Adam lr 1e-3, softmax cross-entropy, the shuffling loader, a test
// evaluation after every epoch) and its report, and their files:
//
//   --save FILE        the trained model (ktnn::save: safetensors under
//                      PyTorch's names)
//   --load FILE        a model file (ktnn's or PyTorch's) to start from
//   --checkpoint FILE  a full training checkpoint after every epoch (model,
//                      Adam's state, the epoch, the step counter), written
//                      atomically: a run killed at any moment leaves the last
//                      complete one
//   --resume FILE      goes on from a checkpoint up to --epochs in all: ends
//                      with the parameters of a run that never stopped
//   --epochs 0         trains nothing: evaluates the model (with --load or
//                      --resume) on the test set

#include <ktnn/io/checkpoint.hpp>
#include <ktnn/io/model_file.hpp>
#include <ktnn/ktnn.hpp>

#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace fashion_mnist {

struct Arguments {
  int epochs = 5;
  int batch = 128;
  std::uint64_t seed = 42;
  std::string csv;
  double min_accuracy = 0;
  bool check_memory = false;
  std::string variant = "plain";
  std::string save, load, resume, checkpoint;
};

/// Peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

Arguments parse(int argc, char** argv, std::string const& program, bool has_variants) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    std::string const flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ktnn::Error(program + ": " + flag + " needs a value");
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
    else if (has_variants && flag == "--variant")
      a.variant = value();
    else if (flag == "--save")
      a.save = value();
    else if (flag == "--load")
      a.load = value();
    else if (flag == "--resume")
      a.resume = value();
    else if (flag == "--checkpoint")
      a.checkpoint = value();
    else if (flag.rfind("--kokkos", 0) == 0)
      continue;
    else
      throw ktnn::Error(program + ": unknown argument '" + flag + "'");
  }
  if (a.variant != "plain" && a.variant != "regularized")
    throw ktnn::Error(program + ": --variant is '" + a.variant + "', must be plain or regularized");
  if (a.epochs < 0) throw ktnn::Error(program + ": --epochs is negative");
  if (!a.load.empty() && !a.resume.empty())
    throw ktnn::Error(program + ": --load and --resume both given (a checkpoint holds the model)");
  return a;
}

/// FNV-1a over the bytes of every parameter, copied to the host.
template <class Model>
std::uint64_t parameter_fingerprint(Model const& model) {
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.parameters());
  std::uint64_t hash = 14695981039346656037ull;
  for (std::size_t i = 0; i < host.size(); ++i) {
    unsigned char bytes[sizeof(host(0))];
    std::memcpy(bytes, &host(i), sizeof bytes);
    for (unsigned char b : bytes) hash = (hash ^ b) * 1099511628211ull;
  }
  return hash;
}

/// Trains Net as the examples do and reports; returns the exit status.
/// `title` starts the header line; test batches have `test_batch` samples.
template <class Net>
int train(Arguments const& args, std::string const& program, std::string const& title,
          int test_batch) {
  auto train = ktnn::data::load_fashion_mnist<float>("train");
  auto test = ktnn::data::load_fashion_mnist<float>("test");
  std::cout << "ktnn " << ktnn::version << " " << title << ": " << Net::name() << "\n"
            << "Fashion-MNIST " << train.size() << " train / " << test.size()
            << " test images, batch " << args.batch << ", Adam lr 1e-3, " << args.epochs
            << " epochs, seed " << args.seed << ", " << Kokkos::DefaultExecutionSpace::name()
            << " with " << Kokkos::DefaultExecutionSpace().concurrency() << " threads\n";

  ktnn::Model<Net, float> model(args.seed);
  ktnn::Adam optimizer(model, {.lr = 1e-3f});
  ktnn::CrossEntropy loss;
  ktnn::data::DataLoader loader(train,
                                {.batch_size = args.batch, .shuffle = true, .seed = args.seed});

  int first_epoch = 0;
  if (!args.load.empty()) {
    ktnn::load(model, args.load);
    std::cout << "loaded the model from " << args.load << "\n";
  }
  if (!args.resume.empty()) {
    auto const progress = ktnn::load_checkpoint(args.resume, model, optimizer);
    ktnn::check_loader(progress, loader);  // the same --seed and --batch
    if (progress.epochs > args.epochs)
      throw ktnn::Error(program + ": the checkpoint '" + args.resume + "' is " +
                        std::to_string(progress.epochs) + " epochs in, past --epochs " +
                        std::to_string(args.epochs));
    first_epoch = progress.epochs;
    std::cout << "resumed from " << args.resume << " after epoch " << first_epoch << "\n";
  }

  double test_accuracy = 0;
  std::vector<double> peak_rss;
  ktnn::FitOptions options;
  options.epochs = args.epochs;
  options.first_epoch = first_epoch;
  options.out = &std::cout;  // the library prints nothing unless asked
  options.csv_path = args.csv;
  options.on_epoch_end.push_back([&](ktnn::EpochMetrics const&) {
    // Test batches of the training size: a larger one would grow every
    // layer's batch buffers (by far the most memory here) for evaluation.
    auto const result = ktnn::evaluate(model, loss, test, args.batch);
    test_accuracy = result.accuracy();
    peak_rss.push_back(peak_rss_mib());
    std::printf("          test loss %.4f  test acc %.4f  peak memory %.1f MiB\n",
                result.mean_loss(), test_accuracy, peak_rss.back());
    std::fflush(stdout);
  });
  if (!args.checkpoint.empty())
    options.on_epoch_end.push_back([&](ktnn::EpochMetrics const& m) {
      ktnn::save_checkpoint(args.checkpoint, model, optimizer,
                            ktnn::training_progress(loader, m.epoch));
      std::printf("          checkpoint %s\n", args.checkpoint.c_str());
      std::fflush(stdout);
    });
  std::vector<ktnn::EpochMetrics> history;
  if (first_epoch < args.epochs) history = ktnn::fit(model, loss, optimizer, loader, options);

  if (history.empty()) {  // nothing to train: evaluate what was loaded
    auto const result = ktnn::evaluate(model, loss, test, args.batch);
    test_accuracy = result.accuracy();
    std::printf("evaluated without training: test loss %.4f  test acc %.4f\n", result.mean_loss(),
                test_accuracy);
  } else {
    double seconds = 0, samples = 0;
    for (auto const& m : history) {
      seconds += m.seconds;
      samples += double(m.samples);
    }
    std::printf("trained %d epochs in %.2f s: %.0f samples/s, final test accuracy %.4f\n",
                int(history.size()), seconds, samples / seconds, test_accuracy);
  }
  // Two runs with the same seed must agree to the bit on any backend and
  // thread count: this digest of every trained parameter is what to compare.
  std::printf("parameters fingerprint %016llx\n",
              static_cast<unsigned long long>(parameter_fingerprint(model)));
  if (!args.save.empty()) {
    ktnn::save(model, args.save);
    std::printf("saved the model to %s\n", args.save.c_str());
  }
  // Workspace is allocated for the first batch and reused: peak memory must
  // not grow after the first epoch.
  if (args.check_memory && peak_rss.size() > 1 && peak_rss.back() > peak_rss.front() + 1.0) {
    std::fprintf(stderr, "%s: peak memory grew from %.1f MiB after epoch 1 to %.1f MiB\n",
                 program.c_str(), peak_rss.front(), peak_rss.back());
    return 1;
  }
  if (test_accuracy < args.min_accuracy) {
    std::fprintf(stderr, "%s: test accuracy %.4f is below the required %.4f\n", program.c_str(),
                 test_accuracy, args.min_accuracy);
    return 1;
  }
  return 0;
}
}  // namespace fashion_mnist
