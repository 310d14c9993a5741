// Data-parallel training over MPI (ktnn/parallel/mpi.hpp). Every rank of the
// job runs every case (ctest runs 2 ranks); a rank's reference runs are its
// own one-process training, with no messages.
#include "helpers.hpp"

#include <ktnn/parallel/mpi.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {
/// MPI_Allreduce calls while `on`: their element counts (through the MPI
/// profiling interface: this definition is called, and forwards to
/// PMPI_Allreduce).
struct AllreduceLog {
  bool on = false;
  std::vector<int> counts;
};
AllreduceLog allreduce_log;
}  // namespace

extern "C" int MPI_Allreduce(void const* send, void* receive, int count, MPI_Datatype type,
                             MPI_Op op, MPI_Comm comm) {
  if (allreduce_log.on) allreduce_log.counts.push_back(count);
  return PMPI_Allreduce(send, receive, count, type, op, comm);
}

namespace {
using ktnn::mpi::CollectiveError;
using ktnn::mpi::Communicator;

using Net = ktnn::Sequential<ktnn::Dense<6, 16, ktnn::ReLU>, ktnn::Dense<16, 8, ktnn::Tanh>,
                             ktnn::Dense<8, 3>>;
using Other = ktnn::Sequential<ktnn::Dense<6, 12, ktnn::ReLU>, ktnn::Dense<12, 3>>;

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

/// n samples of 6 features with a class label in [0, 3), the same on every
/// rank; the label is the arg-max of three fixed linear forms, so it can be
/// learned.
template <class T, class Space>
auto classification_data(std::size_t n, std::uint64_t seed) {
  using Mem = typename Space::memory_space;
  Kokkos::View<T**, Kokkos::LayoutRight, Mem> x("x", n, 6);
  Kokkos::View<int*, Mem> y("y", n);
  ktnn_test::fill_uniform(x, seed, -1, 1);
  auto const xh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, x);
  auto yh = Kokkos::create_mirror_view(y);
  for (std::size_t i = 0; i < n; ++i) {
    double best = -1e300;
    for (int c = 0; c < 3; ++c) {
      double score = 0;
      for (int j = 0; j < 6; ++j) score += double(xh(i, j)) * ((c * 7 + j * 3) % 5 - 2.0);
      if (score > best) {
        best = score;
        yh(i) = c;
      }
    }
  }
  Kokkos::deep_copy(y, yh);
  return ktnn::data::make_dataset<6>(x, y);
}

/// One process, batch B: the reference the ranks must reproduce.
template <class Model, class Optimizer, class Loader>
void train_alone(Model& model, Optimizer& optimizer, Loader& loader, int epochs) {
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    for (int b = 0; b < loader.batches(); ++b) {
      auto [x, y] = loader.batch(b);
      ktnn::train_step(model, ktnn::CrossEntropy{}, optimizer, x, y);
    }
  }
}

template <class Parallel, class Optimizer, class Loader>
void train_parallel(Parallel& parallel, Optimizer& optimizer, Loader& loader, int epochs) {
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    for (int b = 0; b < loader.batches(); ++b)
      parallel.step(ktnn::CrossEntropy{}, optimizer, loader, b);
  }
}

/// The CollectiveError `f` throws: its message and failing rank; a message
/// saying what else happened otherwise.
template <class F>
std::pair<std::string, int> collective_error(F&& f) {
  try {
    f();
  } catch (CollectiveError const& e) {
    return {e.what(), e.failed_rank()};
  } catch (std::exception const& e) {
    return {std::string("not a CollectiveError: ") + e.what(), -2};
  }
  return {"no error", -2};
}

bool contains(std::string const& text, std::string const& part) {
  return text.find(part) != std::string::npos;
}

/// Largest |a - b| / max(1, |b|) and how many elements are equal bit for bit.
std::pair<double, std::size_t> compare(std::vector<double> const& a, std::vector<double> const& b) {
  CHECK(a.size() == b.size());  // not REQUIRE: collectives may follow
  if (a.size() != b.size()) return {1e300, 0};
  double worst = 0;
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
    same += a[i] == b[i] ? 1 : 0;
  }
  return {worst, same};
}
}  // namespace

TEST_CASE("shard_range cuts a batch into runs that differ by at most one sample") {
  for (std::size_t n = 0; n <= 20; ++n)
    for (int parts = 1; parts <= 5; ++parts) {
      std::size_t next = 0, smallest = n, largest = 0;
      for (int part = 0; part < parts; ++part) {
        auto const [begin, end] = ktnn::data::shard_range(n, part, parts);
        CHECK(begin == next);
        next = end;
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
      }
      CHECK(next == n);
      CHECK(largest - smallest <= 1);
    }
  CHECK(ktnn::data::shard_range(7, 0, 2) == std::pair<std::size_t, std::size_t>{0, 4});
  CHECK(ktnn::data::shard_range(7, 1, 2) == std::pair<std::size_t, std::size_t>{4, 7});
  CHECK_THROWS_WITH_AS(ktnn::data::shard_range(7, 2, 2),
                       doctest::Contains("ktnn::data::shard_range: part 2 of 2"), ktnn::Error);
}

TEST_CASE_TEMPLATE_DEFINE("a loader's parts of a batch are its rows, in order", Space,
                          loader_parts) {
  auto const data = classification_data<double, Space>(37, 3);
  ktnn::data::DataLoader<std::remove_cvref_t<decltype(data)>, Space> whole(
      data, {.batch_size = 9, .seed = 4}),
      parts(data, {.batch_size = 9, .seed = 4});
  whole.start_epoch(1);
  parts.start_epoch(1);
  for (int b = 0; b < whole.batches(); ++b) {
    auto const [x, y] = whole.batch(b);
    auto const all_x = ktnn_test::to_vector(x.view());
    auto const all_y = ktnn_test::to_vector(y);
    std::vector<double> joined_x, joined_y;
    for (int part = 0; part < 2; ++part) {
      auto const [px, py] = parts.batch(b, part, 2);
      auto const vx = ktnn_test::to_vector(px.view());
      auto const vy = ktnn_test::to_vector(py);
      joined_x.insert(joined_x.end(), vx.begin(), vx.end());
      joined_y.insert(joined_y.end(), vy.begin(), vy.end());
    }
    CHECK(joined_x == all_x);
    CHECK(joined_y == all_y);
  }
  CHECK(whole.batch_samples(4) == 1);  // 37 = 4 x 9 + 1: rank 1's last part is empty
  CHECK(parts.batch(4, 1, 2).first.batch() == 0);
}
TEST_CASE_TEMPLATE_APPLY(loader_parts, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("data-parallel steps give one process's parameters with the global batch",
                          Space, parallel_equals_one_process) {
  Communicator comm;
  // B odd and 37 samples, not a multiple of B: shards of 5 and 4, a last
  // batch of 1 (an empty shard on rank 1); B = 8: a last batch of 5.
  for (int const batch : {9, 8}) {
    CAPTURE(batch);
    auto const data = classification_data<double, Space>(37, 11);
    using Data = std::remove_cvref_t<decltype(data)>;
    ktnn::data::LoaderOptions const options{.batch_size = batch, .seed = 5};
    ktnn::Model<Net, double, Space> alone(7), together(7);
    ktnn::Adam adam_alone(alone, {.lr = 1e-2}), adam_together(together, {.lr = 1e-2});
    ktnn::data::DataLoader<Data, Space> loader_alone(data, options), loader_together(data, options);
    train_alone(alone, adam_alone, loader_alone, 3);
    ktnn::mpi::DataParallel parallel(comm, together);
    train_parallel(parallel, adam_together, loader_together, 3);
    // The sums over a batch are taken in another order (rows on each rank,
    // then ranks), so this agrees to rounding, not bit for bit.
    auto const [worst, same] = compare(ktnn_test::to_vector(together.parameters()),
                                       ktnn_test::to_vector(alone.parameters()));
    if (world_rank() == 0)
      MESSAGE(comm.size(), " ranks against 1, batch ", batch,
              ", 3 epochs of Adam (double): ", "largest relative difference ", worst, ", ", same,
              " of ", Net::param_count, " parameters equal bit for bit");
    CHECK(worst <= 1e-12);
    CHECK(!ktnn_test::to_vector(together.parameters()).empty());
    // The ranks hold the same parameters, bit for bit.
    CHECK_NOTHROW(ktnn::mpi::check_agreement(comm, together));
  }
}
TEST_CASE_TEMPLATE_APPLY(parallel_equals_one_process, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("data-parallel float training stays within float rounding of one process",
                          Space, parallel_float) {
  Communicator comm;
  auto const data = classification_data<float, Space>(37, 12);
  using Data = std::remove_cvref_t<decltype(data)>;
  ktnn::data::LoaderOptions const options{.batch_size = 7, .seed = 6};
  ktnn::Model<Net, float, Space> alone(8), together(8);
  ktnn::SGD sgd_alone(alone, {.lr = 0.1f, .momentum = 0.9f}),
      sgd_together(together, {.lr = 0.1f, .momentum = 0.9f});
  ktnn::data::DataLoader<Data, Space> loader_alone(data, options), loader_together(data, options);
  train_alone(alone, sgd_alone, loader_alone, 3);
  ktnn::mpi::DataParallel parallel(comm, together);
  train_parallel(parallel, sgd_together, loader_together, 3);
  auto const [worst, same] = compare(ktnn_test::to_vector(together.parameters()),
                                     ktnn_test::to_vector(alone.parameters()));
  if (world_rank() == 0)
    MESSAGE(comm.size(), " ranks against 1, batch 7, 3 epochs of SGD with momentum (float): ",
            "largest relative difference ", worst, ", ", same, " of ", Net::param_count,
            " parameters equal bit for bit");
  CHECK(worst <= 2e-5);
}
TEST_CASE_TEMPLATE_APPLY(parallel_float, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("one rank's data-parallel steps are train_step's, bit for bit", Space,
                          one_rank_bitwise) {
  Communicator self(MPI_COMM_SELF);
  auto const data = classification_data<float, Space>(37, 13);
  using Data = std::remove_cvref_t<decltype(data)>;
  ktnn::data::LoaderOptions const options{.batch_size = 9, .seed = 7};
  ktnn::Model<Net, float, Space> alone(9), parallel_model(9);
  ktnn::Adam adam_alone(alone, {.lr = 1e-2f}), adam_parallel(parallel_model, {.lr = 1e-2f});
  ktnn::data::DataLoader<Data, Space> loader_alone(data, options), loader_parallel(data, options);
  train_alone(alone, adam_alone, loader_alone, 2);
  ktnn::mpi::DataParallel parallel(self, parallel_model);
  train_parallel(parallel, adam_parallel, loader_parallel, 2);
  CHECK(ktnn_test::to_vector(parallel_model.parameters()) ==
        ktnn_test::to_vector(alone.parameters()));
}
TEST_CASE_TEMPLATE_APPLY(one_rank_bitwise, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE(
    "the staged transport gives the direct one's bits, with one all-reduce a step", Space,
    staged_transport) {
  Communicator comm;
  auto const data = classification_data<float, Space>(37, 14);
  using Data = std::remove_cvref_t<decltype(data)>;
  ktnn::data::LoaderOptions const options{.batch_size = 9, .seed = 8};
  ktnn::Model<Net, float, Space> direct_model(10), staged_model(10);
  ktnn::Adam adam_direct(direct_model, {.lr = 1e-2f}), adam_staged(staged_model, {.lr = 1e-2f});
  ktnn::data::DataLoader<Data, Space> loader_direct(data, options), loader_staged(data, options);
  // Host memory: MPI reads the arena itself unless told to stage (device
  // memory: only a GPU-aware MPI does, which automatic asks).
  constexpr bool host =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Space::memory_space>::accessible;
  ktnn::mpi::DataParallel direct(
      comm, direct_model,
      {.transport = host ? ktnn::mpi::Transport::direct : ktnn::mpi::Transport::automatic});
  ktnn::mpi::DataParallel staged(comm, staged_model, {.transport = ktnn::mpi::Transport::staged});
  CHECK(staged.staged());
  if constexpr (host) {
    CHECK(!direct.staged());
    CHECK(!ktnn::mpi::DataParallel(comm, direct_model).staged());
  }
  allreduce_log = {.on = true, .counts = {}};
  train_parallel(staged, adam_staged, loader_staged, 1);
  allreduce_log.on = false;
  train_parallel(direct, adam_direct, loader_direct, 1);
  CHECK(ktnn_test::to_vector(staged_model.parameters()) ==
        ktnn_test::to_vector(direct_model.parameters()));
  // Per step: the agreement (one element of its own type), then the whole
  // gradient arena in one call.
  int const steps = loader_staged.batches();
  REQUIRE(allreduce_log.counts.size() == std::size_t(2 * steps));
  for (int s = 0; s < steps; ++s) {
    CHECK(allreduce_log.counts[std::size_t(2 * s)] == 1);
    CHECK(allreduce_log.counts[std::size_t(2 * s + 1)] == int(Net::param_count));
  }
  CHECK(staged.stats().steps == std::size_t(steps));
  CHECK(staged.stats().bytes_per_allreduce == Net::param_count * sizeof(float));
  CHECK(staged.stats().allreduce_seconds > 0);
}
TEST_CASE_TEMPLATE_APPLY(staged_transport, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("fit and evaluate over the ranks report the whole run's metrics", Space,
                          metrics_over_ranks) {
  Communicator comm;
  auto const data = classification_data<double, Space>(37, 15);
  using Data = std::remove_cvref_t<decltype(data)>;
  ktnn::data::LoaderOptions const loader_options{.batch_size = 9, .seed = 9};
  ktnn::Model<Net, double, Space> alone(11), together(11);
  ktnn::Adam adam_alone(alone, {.lr = 1e-2}), adam_together(together, {.lr = 1e-2});
  ktnn::data::DataLoader<Data, Space> loader_alone(data, loader_options),
      loader_together(data, loader_options);
  std::string const csv = "ktnn_mpi_metrics.csv";
  if (comm.root()) std::remove(csv.c_str());
  comm.barrier();

  ktnn::FitOptions options;
  options.epochs = 2;
  options.interactive = false;
  auto const reference = ktnn::fit(alone, ktnn::CrossEntropy{}, adam_alone, loader_alone, options);
  std::ostringstream out;
  options.out = &out;
  options.csv_path = csv;
  std::vector<double> test_accuracy;
  options.on_epoch_end.push_back([&](ktnn::EpochMetrics const&) {
    // Collective, on every rank.
    test_accuracy.push_back(ktnn::evaluate(together, ktnn::CrossEntropy{}, data, comm).accuracy());
  });
  auto const history =
      ktnn::fit(together, ktnn::CrossEntropy{}, adam_together, loader_together, options, comm);
  CHECK(history.size() == 2);
  CHECK(test_accuracy.size() == 2);
  for (std::size_t e = 0; e < std::min<std::size_t>(history.size(), 2); ++e) {
    CHECK(history[e].samples == 37);  // every sample, once, over the ranks
    CHECK(history[e].accuracy == reference[e].accuracy);
    CHECK(history[e].loss == doctest::Approx(reference[e].loss).epsilon(1e-12));
  }
  // Only rank 0 prints and writes: one header and one line per epoch.
  if (comm.root()) {
    CHECK(contains(out.str(), "epoch 2/2"));
    std::ifstream file(csv);
    std::string line;
    int lines = 0;
    while (std::getline(file, line)) ++lines;
    CHECK(lines == 3);
  } else {
    CHECK(out.str().empty());
  }

  // evaluate: each rank its share of the rows, the sums the whole dataset's.
  for (int const batch_size : {1024, 5}) {
    auto const local = ktnn::evaluate(together, ktnn::CrossEntropy{}, data, batch_size);
    auto const shared = ktnn::evaluate(together, ktnn::CrossEntropy{}, data, comm, batch_size);
    CHECK(shared.count == 37);
    CHECK(shared.correct == local.correct);
    CHECK(shared.loss == doctest::Approx(local.loss).epsilon(1e-12));
  }
  // A function dataset: each rank's share through its functor at an offset.
  using Mem = typename Space::memory_space;
  auto const x = data.inputs.view();
  auto const y = data.targets;
  auto const samples = ktnn::data::make_function_dataset<double, 6, ktnn::data::class_labels, Mem>(
      37, KOKKOS_LAMBDA(std::size_t i, double* sample, int& label) {
        for (int j = 0; j < 6; ++j) sample[j] = x(i, j);
        label = y(i);
      });
  auto const from_views = ktnn::evaluate(together, ktnn::CrossEntropy{}, data, 4);
  auto const from_function = ktnn::evaluate(together, ktnn::CrossEntropy{}, samples, comm, 4);
  CHECK(from_function.count == 37);
  CHECK(from_function.correct == from_views.correct);
  CHECK(from_function.loss == doctest::Approx(from_views.loss).epsilon(1e-12));
}
TEST_CASE_TEMPLATE_APPLY(metrics_over_ranks, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE(
    "a data-parallel run resumed from a checkpoint ends bit for bit as one "
    "that did not stop",
    Space, checkpoint_resume) {
  Communicator comm;
  auto const data = classification_data<double, Space>(41, 21);
  using Data = std::remove_cvref_t<decltype(data)>;
  ktnn::data::LoaderOptions const loader_options{.batch_size = 8, .seed = 5};
  ktnn::FitOptions options;
  options.epochs = 3;
  options.interactive = false;

  ktnn::Model<Net, double, Space> straight(17);
  ktnn::Adam adam_straight(straight, {.lr = 1e-2});
  ktnn::data::DataLoader<Data, Space> loader_straight(data, loader_options);
  ktnn::fit(straight, ktnn::CrossEntropy{}, adam_straight, loader_straight, options, comm);

  // Stop after one epoch; rank 0 writes, every rank reads into fresh objects.
  std::string const path = "ktnn_mpi_checkpoint.safetensors";
  {
    ktnn::Model<Net, double, Space> first(17);
    ktnn::Adam adam_first(first, {.lr = 1e-2});
    ktnn::data::DataLoader<Data, Space> loader_first(data, loader_options);
    options.epochs = 1;
    ktnn::fit(first, ktnn::CrossEntropy{}, adam_first, loader_first, options, comm);
    ktnn::mpi::save_checkpoint(comm, path, first, adam_first,
                               ktnn::training_progress(loader_first, 1));
  }
  ktnn::Model<Net, double, Space> resumed(99);  // another seed: the file decides
  ktnn::Adam adam_resumed(resumed, {.lr = 1e-2});
  ktnn::data::DataLoader<Data, Space> loader_resumed(data, loader_options);
  auto const progress = ktnn::mpi::load_checkpoint(comm, path, resumed, adam_resumed);
  CHECK(progress.epochs == 1);
  ktnn::check_loader(progress, loader_resumed);
  options.epochs = 3;
  options.first_epoch = progress.epochs;
  ktnn::fit(resumed, ktnn::CrossEntropy{}, adam_resumed, loader_resumed, options, comm);
  auto const [worst, same] = compare(ktnn_test::to_vector(resumed.parameters()),
                                     ktnn_test::to_vector(straight.parameters()));
  CHECK(same == std::size_t(decltype(straight)::param_count));
  CHECK(worst == 0.0);

  // A rank that cannot read the checkpoint makes every rank throw, naming it.
  if (comm.size() >= 2) {
    auto const [message, failed] = collective_error([&] {
      ktnn::mpi::load_checkpoint(comm, comm.rank() == 1 ? path + ".missing" : path, resumed,
                                 adam_resumed);
    });
    CHECK(failed == 1);
    CHECK(contains(message, "ktnn::mpi::load_checkpoint"));
    CHECK(contains(message, "rank 1"));
  }
  comm.barrier();
  if (comm.root()) std::remove(path.c_str());
}
TEST_CASE_TEMPLATE_APPLY(checkpoint_resume, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a rank that fails in a step stops every rank, naming it", Space,
                          step_failure) {
  Communicator comm;
  if (comm.size() < 2) return;
  using Model = ktnn::Model<Net, double, Space>;
  using Rows = typename Model::batch_view;
  Model model(12);
  ktnn::Adam adam(model, {.lr = 1e-2});
  ktnn::mpi::DataParallel parallel(comm, model);
  Rows x("x", 4, 6);
  ktnn_test::fill_uniform(x, 1);
  Kokkos::View<int*, typename Space::memory_space> y("y", 4);
  std::size_t const global = 4 * std::size_t(comm.size());
  auto const before = ktnn_test::to_vector(model.parameters());

  // Rank 1's batch has 5 features, not 6: its forward throws.
  Kokkos::View<double**, Kokkos::LayoutRight, typename Space::memory_space> wrong("wrong", 4, 5);
  auto const [message, failed] = collective_error([&] {
    if (comm.rank() == 1)
      parallel.step(ktnn::CrossEntropy{}, adam, wrong, y, global);
    else
      parallel.step(ktnn::CrossEntropy{}, adam, x, y, global);
  });
  INFO(message);
  CHECK(contains(message, "ktnn::mpi::train_step: rank 1 of " + std::to_string(comm.size()) +
                              " failed: ktnn::Model::forward: 'wrong' has 5 features"));
  CHECK(failed == 1);
  // No rank stepped, and the communicator is still in step: a good step works.
  CHECK(ktnn_test::to_vector(model.parameters()) == before);
  CHECK_NOTHROW(parallel.step(ktnn::CrossEntropy{}, adam, x, y, global));
  CHECK_NOTHROW(ktnn::mpi::check_agreement(comm, model));

  // Shards that do not add up to the global batch.
  auto const [sum_message, sum_failed] =
      collective_error([&] { parallel.step(ktnn::CrossEntropy{}, adam, x, y, global + 1); });
  CHECK(contains(sum_message, "each sample of a global batch must be on exactly one rank"));
  CHECK(sum_failed == -1);
  // A global batch size that differs between ranks.
  auto const [size_message, size_failed] = collective_error(
      [&] { parallel.step(ktnn::CrossEntropy{}, adam, x, y, global + std::size_t(comm.rank())); });
  CHECK(contains(size_message, "the ranks disagree on the global batch size"));
  CHECK(size_failed == -1);

  // An optimizer's error comes after the all-reduce: it is held, and the next
  // agreement stops every rank.
  if (comm.rank() == 1) adam.options().lr = -1;
  CHECK_NOTHROW(parallel.step(ktnn::CrossEntropy{}, adam, x, y, global));
  auto const [optimizer_message, optimizer_failed] =
      collective_error([&] { parallel.step(ktnn::CrossEntropy{}, adam, x, y, global); });
  CHECK(contains(optimizer_message, "ktnn::mpi::train_step: rank 1 of"));
  CHECK(contains(optimizer_message, "option lr is -1"));
  CHECK(optimizer_failed == 1);
  adam.options().lr = 1e-2;
  // Rank 1 did not step: the ranks now differ, and the check says which.
  auto const [agree_message, agree_failed] =
      collective_error([&] { ktnn::mpi::check_agreement(comm, model); });
  CHECK(contains(agree_message, "ktnn::mpi::check_agreement: the parameters and state"));
  CHECK(contains(agree_message, "of rank 1 of"));
  CHECK(agree_failed == 1);
  ktnn::mpi::broadcast(comm, model);  // rank 0's again
  CHECK_NOTHROW(ktnn::mpi::check_agreement(comm, model));
}
TEST_CASE_TEMPLATE_APPLY(step_failure, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("errors before training stop every rank, naming the first that failed",
                          Space, failure_before_training) {
  Communicator comm;
  if (comm.size() < 2) return;
  std::string const ranks = " of " + std::to_string(comm.size()) + " failed: ";

  // Data one rank cannot read.
  auto const [read_message, read_failed] = collective_error([&] {
    comm.run("read the training data", [&] {
      if (comm.rank() == 1) ktnn::data::read_idx("/nonexistent/train-images-idx3-ubyte.gz", 3);
    });
  });
  CHECK(contains(read_message, "read the training data: rank 1" + ranks));
  CHECK(contains(read_message, "/nonexistent/train-images-idx3-ubyte.gz"));
  CHECK(read_failed == 1);

  // A class label out of range in rank 1's copy of the data: fit's checks.
  auto data = classification_data<double, Space>(20, 16);
  if (comm.rank() == 1) ktnn_test::set_element(data.targets, 7, 3);
  ktnn::Model<Net, double, Space> model(13);
  ktnn::Adam adam(model, {.lr = 1e-2});
  ktnn::data::DataLoader loader(data, {.batch_size = 8});
  auto const [fit_message, fit_failed] = collective_error(
      [&] { ktnn::fit(model, ktnn::CrossEntropy{}, adam, loader, ktnn::FitOptions{}, comm); });
  CHECK(
      contains(fit_message, "ktnn::fit: rank 1" + ranks + "ktnn::fit: class label 7 of sample 3"));
  CHECK(fit_failed == 1);

  // Loaders that would shuffle differently.
  ktnn::data::DataLoader other(data, {.batch_size = 8, .seed = std::uint64_t(comm.rank())});
  auto const [loader_message, loader_failed] = collective_error(
      [&] { ktnn::fit(model, ktnn::CrossEntropy{}, adam, other, ktnn::FitOptions{}, comm); });
  CHECK(contains(loader_message, "ktnn::fit: the data loader"));
  CHECK(loader_failed == 1);

  // Models of different architectures: found before anything is sent.
  auto const [model_message, model_failed] = collective_error([&] {
    if (comm.rank() == 0) {
      ktnn::Model<Net, double, Space> mine(1);
      ktnn::mpi::DataParallel parallel(comm, mine);
    } else {
      ktnn::Model<Other, double, Space> mine(1);
      ktnn::mpi::DataParallel parallel(comm, mine);
    }
  });
  CHECK(
      contains(model_message,
               "ktnn::mpi::broadcast: the model (architecture, scalar type, arena sizes) of rank"));
  CHECK(model_failed == 1);

  // Errors that every rank knows are passed on as they are, not wrapped.
  auto const [nested_message, nested_failed] = collective_error([&] {
    comm.run("outer", [&] { throw CollectiveError("inner: rank 1 of 2 failed: x", 1, 1); });
  });
  CHECK(nested_message == "inner: rank 1 of 2 failed: x");
  CHECK(nested_failed == 1);
}
TEST_CASE_TEMPLATE_APPLY(failure_before_training, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoints: rank 0 writes, every rank reads", Space, checkpoints) {
  Communicator comm;
  ktnn::Model<Net, double, Space> trained(14), restored(15);
  std::string const path = "ktnn_mpi_checkpoint.safetensors";
  ktnn::mpi::save(comm, trained, path);
  ktnn::mpi::load(comm, restored, path);
  CHECK(ktnn_test::to_vector(restored.parameters()) == ktnn_test::to_vector(trained.parameters()));
  // Rank 0 cannot write: every rank hears of it.
  auto const [message, failed] = collective_error(
      [&] { ktnn::mpi::save(comm, trained, "no_such_directory/checkpoint.safetensors"); });
  CHECK(contains(message, "ktnn::mpi::save: rank 0 of " + std::to_string(comm.size()) + " failed"));
  CHECK(contains(message, "no_such_directory"));
  CHECK(failed == 0);
  // A file one rank cannot read.
  auto const [load_message, load_failed] = collective_error([&] {
    ktnn::mpi::load(comm, restored, comm.rank() == comm.size() - 1 ? "missing.safetensors" : path);
  });
  CHECK(contains(load_message, "ktnn::mpi::load: rank " + std::to_string(comm.size() - 1)));
  CHECK(load_failed == comm.size() - 1);
}
TEST_CASE_TEMPLATE_APPLY(checkpoints, ktnn_test::spaces);
