// The demo trained data-parallel over MPI ranks: the 784-256-128-10 ReLU MLP
// on Fashion-MNIST with Adam (lr 1e-3), a fixed seed, the same run as
// fashion_mnist_mlp, with the global batch (--batch, 128) split over the
// ranks and the gradients summed by one all-reduce per step. Rank 0 prints
// per-epoch time, samples/s, loss and test accuracy (evaluated by all ranks
// together), then the time per all-reduce.
//
//   mpirun -np P fashion_mnist_mpi [--epochs N] [--batch B] [--seed S] [--csv FILE]
//                                  [--min-accuracy A]  (exit 1 if the final test accuracy is lower)
//                                  [--save FILE] [--load FILE] [--checkpoint FILE] [--resume FILE]
//
// The files are those of fashion_mnist_mlp (fashion_mnist.hpp): rank 0
// writes them, every rank reads them, so a checkpoint of a run on P ranks
// resumes on P ranks (the shards of a global batch depend on P).
//
// Run without mpirun it is one rank: the demo's own run, to the bit. Where
// other work shares the cores, OMPI_MCA_mpi_yield_when_idle=1 lets a rank
// that waits in MPI give its core away (docs/scaling.md).

#include "fashion_mnist.hpp"

#include <ktnn/parallel/mpi.hpp>

#include <cstdio>
#include <iostream>

namespace {
using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;

int train(fashion_mnist::Arguments const& args, ktnn::mpi::Communicator const& comm) {
  char const* program = "fashion_mnist_mpi";
  bool const root = comm.root();
  // Every rank reads the data; a rank that cannot stops them all.
  auto const data = comm.run("fashion_mnist_mpi: load Fashion-MNIST", [] {
    return std::pair{ktnn::data::load_fashion_mnist<float>("train"),
                     ktnn::data::load_fashion_mnist<float>("test")};
  });
  auto const& train = data.first;
  auto const& test = data.second;
  int const ranks = comm.size();
  if (root)
    std::cout << "ktnn " << ktnn::version << " data-parallel demo: " << Mlp::name() << "\n"
              << "Fashion-MNIST " << train.size() << " train / " << test.size()
              << " test images, global batch " << args.batch << " over " << ranks << " rank"
              << (ranks > 1 ? "s" : "") << " (" << args.batch / ranks
              << (args.batch % ranks ? "+" : "") << " per rank), Adam lr 1e-3, " << args.epochs
              << " epochs, seed " << args.seed << ", " << Kokkos::DefaultExecutionSpace::name()
              << " with " << Kokkos::DefaultExecutionSpace().concurrency() << " threads per rank\n"
              << std::flush;

  ktnn::Model<Mlp, float> model(args.seed);
  ktnn::Adam optimizer(model, {.lr = 1e-3f});
  ktnn::CrossEntropy loss;
  ktnn::data::DataLoader loader(train,
                                {.batch_size = args.batch, .shuffle = true, .seed = args.seed});
  ktnn::mpi::DataParallel parallel(comm, model);  // rank 0's initial weights everywhere

  int first_epoch = 0;
  if (!args.load.empty()) {
    ktnn::mpi::load(comm, model, args.load);
    if (root) std::cout << "loaded the model from " << args.load << "\n";
  }
  if (!args.resume.empty()) {
    auto const progress = ktnn::mpi::load_checkpoint(comm, args.resume, model, optimizer);
    comm.run("fashion_mnist_mpi: --resume", [&] {
      ktnn::check_loader(progress, loader);  // the same --seed and --batch
      if (progress.epochs > args.epochs)
        throw ktnn::Error(std::string(program) + ": the checkpoint '" + args.resume + "' is " +
                          std::to_string(progress.epochs) + " epochs in, past --epochs " +
                          std::to_string(args.epochs));
    });
    first_epoch = progress.epochs;
    if (root) std::cout << "resumed from " << args.resume << " after epoch " << first_epoch << "\n";
  }

  double test_accuracy = 0;
  ktnn::FitOptions options;
  options.epochs = args.epochs;
  options.first_epoch = first_epoch;
  options.out = &std::cout;  // printed by rank 0 only
  options.csv_path = args.csv;
  options.on_epoch_end.push_back([&](ktnn::EpochMetrics const&) {
    auto const result = ktnn::evaluate(model, loss, test, comm, args.batch);  // all ranks
    test_accuracy = result.accuracy();
    if (root) {
      std::printf("          test loss %.4f  test acc %.4f\n", result.mean_loss(), test_accuracy);
      std::fflush(stdout);
    }
  });
  if (!args.checkpoint.empty())
    options.on_epoch_end.push_back([&](ktnn::EpochMetrics const& m) {
      ktnn::mpi::save_checkpoint(comm, args.checkpoint, model, optimizer,
                                 ktnn::training_progress(loader, m.epoch));
      if (root) {
        std::printf("          checkpoint %s\n", args.checkpoint.c_str());
        std::fflush(stdout);
      }
    });
  std::vector<ktnn::EpochMetrics> history;
  if (first_epoch < args.epochs) history = ktnn::fit(parallel, loss, optimizer, loader, options);
  if (history.empty()) {  // nothing to train: evaluate what was loaded
    auto const result = ktnn::evaluate(model, loss, test, comm, args.batch);
    test_accuracy = result.accuracy();
    if (root)
      std::printf("evaluated without training: test loss %.4f  test acc %.4f\n", result.mean_loss(),
                  test_accuracy);
  }

  double seconds = 0, samples = 0;
  for (auto const& m : history) {
    seconds += m.seconds;
    samples += double(m.samples);
  }
  auto const& stats = parallel.stats();
  double const per_allreduce = stats.seconds_per_allreduce();
  // Bus bandwidth: the bytes a ring all-reduce moves per rank, 2 (p-1)/p of
  // the buffer, over the time.
  double const moved = 2.0 * double(ranks - 1) / double(ranks) * double(stats.bytes_per_allreduce);
  if (root && !history.empty()) {
    std::printf("trained %d epochs in %.2f s: %.0f samples/s, final test accuracy %.4f\n",
                int(history.size()), seconds, samples / seconds, test_accuracy);
    std::printf(
        "all-reduce: %zu steps of %zu bytes (%s), %.1f us each on average (%.2f GB/s bus "
        "bandwidth), the fastest %.1f us, %.1f%% of the training time; the agreement before it "
        "%.1f us a step\n",
        stats.steps, stats.bytes_per_allreduce,
        parallel.staged() ? "staged through the host" : "the arena itself", 1e6 * per_allreduce,
        per_allreduce > 0 ? moved / per_allreduce / 1e9 : 0.0, 1e6 * stats.allreduce_min_seconds,
        100.0 * stats.allreduce_seconds / seconds,
        1e6 * stats.agreement_seconds / double(std::max<std::size_t>(stats.steps, 1)));
  }
  if (root)
    std::printf("parameters fingerprint %016llx\n",
                static_cast<unsigned long long>(fashion_mnist::parameter_fingerprint(model)));
  if (!args.save.empty()) {
    ktnn::mpi::save(comm, model, args.save);
    if (root) std::printf("saved the model to %s\n", args.save.c_str());
  }
  if (test_accuracy < args.min_accuracy) {
    if (root)
      std::fprintf(stderr, "%s: test accuracy %.4f is below the required %.4f\n", program,
                   test_accuracy, args.min_accuracy);
    return 1;
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  ktnn::mpi::Session session(argc, argv);
  Kokkos::ScopeGuard kokkos(argc, argv);
  return session.run([&] {
    ktnn::mpi::Communicator comm;
    auto const args = comm.run("fashion_mnist_mpi", [&] {
      return fashion_mnist::parse(argc, argv, "fashion_mnist_mpi", false);
    });
    return train(args, comm);
  });
}
