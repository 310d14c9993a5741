// Training end to end: a small problem reaches a known loss, runs are
// bitwise reproducible, partial batches count, metrics reach CSV and callbacks.

#include "helpers.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {
/// y = sin(2 x0) * x1 on [-1, 1]^2: sample i of a side x side grid.
struct WaveSample {
  int side;
  KOKKOS_FUNCTION void operator()(std::size_t sample, double* x, double* y) const {
    int const i = int(sample);
    double const a = -1.0 + 2.0 * (i % side) / (side - 1);
    double const b = -1.0 + 2.0 * (i / side) / (side - 1);
    x[0] = a;
    x[1] = b;
    y[0] = Kokkos::sin(2 * a) * b;
  }
};

/// The same samples, all of them, in Views.
template <class Space>
ktnn::data::RegressionDataset<double, 2, typename Space::memory_space> wave(int side) {
  using Mem = typename Space::memory_space;
  int const n = side * side;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> x("x", n, 2), y("y", n, 1);
  WaveSample const sample{side};
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n),
      KOKKOS_LAMBDA(int i) { sample(std::size_t(i), &x(i, 0), &y(i, 0)); });
  return {ktnn::Tensor<double, 2, Kokkos::LayoutRight, Mem>(x), y};
}
using WaveNet = ktnn::Sequential<ktnn::Dense<2, 32, ktnn::Tanh>, ktnn::Dense<32, 32, ktnn::Tanh>,
                                 ktnn::Dense<32, 1>>;
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("a 2-D regression trains below a loss threshold", Space, regression) {
  auto data = wave<Space>(20);  // 400 samples, batch 32: the last batch has 16
  ktnn::Model<WaveNet, double, Space> model(1);
  ktnn::Adam<double, Space> adam(model, {.lr = 3e-3});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 32, .seed = 2});
  CHECK(loader.batches() == 13);
  ktnn::FitOptions options;
  options.epochs = 150;
  options.out = nullptr;
  auto const history = ktnn::fit(model, ktnn::MSE{}, adam, loader, options);
  REQUIRE(history.size() == 150);
  CHECK(history.back().samples == 400);  // the partial batch is trained on
  auto const final_loss = ktnn::evaluate(model, ktnn::MSE{}, data, 64);
  INFO("initial " << history.front().loss << " final " << final_loss.mean_loss());
  CHECK(final_loss.count == 400);
  CHECK(final_loss.mean_loss() < 2e-3);
  CHECK(final_loss.mean_loss() < 0.02 * history.front().loss);
}
TEST_CASE_TEMPLATE_APPLY(regression, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("XOR is learned with SGD and momentum", Space, xor_sgd) {
  using Mem = typename Space::memory_space;
  ktnn_test::XorProblem<Space> const problem;
  auto const x = problem.x;
  auto const y = problem.classes;
  ktnn::data::ClassificationDataset<float, 2, Mem> data(ktnn::as_tensor<2>(x), y);
  using Net = ktnn::Sequential<ktnn::Dense<2, 8, ktnn::Tanh>, ktnn::Dense<8, 2>>;
  ktnn::Model<Net, float, Space> model(4);
  ktnn::SGD<float, Space> sgd(model, {.lr = 0.1f, .momentum = 0.9f});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 4});
  ktnn::FitOptions options;
  options.epochs = 300;
  options.out = nullptr;
  ktnn::fit(model, ktnn::CrossEntropy{}, sgd, loader, options);
  auto const result = ktnn::evaluate(model, ktnn::CrossEntropy{}, data);
  CHECK(result.accuracy() == 1.0);
  CHECK(result.mean_loss() < 0.05);
}
TEST_CASE_TEMPLATE_APPLY(xor_sgd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("same seed, same threads: bitwise identical parameters", Space,
                          determinism) {
  auto data = wave<Space>(12);
  auto train = [&](std::uint64_t seed) {
    ktnn::Model<WaveNet, float, Space> model(seed);
    ktnn::Adam<float, Space> adam(model);
    auto copy = ktnn::data::RegressionDataset<float, 2, typename Space::memory_space>(
        ktnn::Tensor<float, 2, Kokkos::LayoutRight, typename Space::memory_space>("x", data.size()),
        Kokkos::View<float**, Kokkos::LayoutRight, typename Space::memory_space>("y", data.size(),
                                                                                 1));
    auto xs = data.inputs.view();
    auto ys = data.targets;
    auto xd = copy.inputs.view();
    auto yd = copy.targets;
    Kokkos::parallel_for(
        Kokkos::RangePolicy<Space>(0, data.size()), KOKKOS_LAMBDA(int i) {
          xd(i, 0) = float(xs(i, 0));
          xd(i, 1) = float(xs(i, 1));
          yd(i, 0) = float(ys(i, 0));
        });
    ktnn::data::DataLoader<decltype(copy), Space> loader(copy, {.batch_size = 10, .seed = seed});
    ktnn::FitOptions options;
    options.epochs = 5;
    options.out = nullptr;
    ktnn::fit(model, ktnn::MSE{}, adam, loader, options);
    return ktnn_test::to_vector(model.parameters());
  };
  auto const a = train(3), b = train(3), c = train(4);
  CHECK(a == b);  // exact equality of every bit
  CHECK(a != c);
}
TEST_CASE_TEMPLATE_APPLY(determinism, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("fit reports progress, writes CSV and calls callbacks", Space,
                          fit_reporting) {
  auto data = wave<Space>(8);
  ktnn::Model<WaveNet, double, Space> model(1);
  ktnn::SGD<double, Space> sgd(model, {.lr = 0.05});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 16});
  auto const csv = std::filesystem::temp_directory_path() / "ktnn_test_metrics.csv";
  std::filesystem::remove(csv);
  std::ostringstream log;
  std::vector<int> seen;
  ktnn::FitOptions options;
  options.epochs = 3;
  options.out = &log;
  options.interactive = false;
  options.report_interval = 1e-9;  // a line after every batch
  options.csv_path = csv.string();
  options.on_epoch_end.push_back([&](ktnn::EpochMetrics const& m) { seen.push_back(m.epoch); });
  auto const history = ktnn::fit(model, ktnn::MSE{}, sgd, loader, options);
  CHECK(seen == std::vector<int>{1, 2, 3});
  CHECK(history[2].samples == 64);
  CHECK(history[2].samples_per_second > 0);
  std::string const text = log.str();
  CHECK(text.find("epoch 1/3  loss") != std::string::npos);
  CHECK(text.find("samples/s ETA") != std::string::npos);  // periodic progress lines
  CHECK(text.find('\r') == std::string::npos);             // plain lines off a terminal
  std::ifstream in(csv);
  std::string header, line;
  std::getline(in, header);
  CHECK(header == "epoch,loss,accuracy,seconds,samples_per_second,samples");
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == 3);
  std::filesystem::remove(csv);
}
TEST_CASE_TEMPLATE_APPLY(fit_reporting, ktnn_test::spaces);

namespace {
// Kokkos Tools hooks that count what happens inside training steps.
int allocations = 0;
int fences = 0;
std::vector<std::string> fence_names;
void count_allocation(Kokkos_Profiling_SpaceHandle, char const*, void const*, std::uint64_t) {
  ++allocations;
}
void count_fence(char const* name, std::uint32_t, std::uint64_t* id) {
  ++fences;
  fence_names.emplace_back(name);
  *id = 0;
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("a training step allocates nothing and waits for nothing", Space,
                          step_no_alloc) {
  using Mem = typename Space::memory_space;
  using Net = ktnn::Sequential<ktnn::Dense<20, 16, ktnn::GELU>, ktnn::Dense<16, 5>>;
  int const n = 100;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", n, 20);
  Kokkos::View<int*, Mem> y("y", n);
  ktnn_test::fill_uniform(x, 1);
  Kokkos::parallel_for(Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) { y(i) = i % 5; });
  ktnn::data::ClassificationDataset<float, 20, Mem> data(ktnn::as_tensor<20>(x), y);
  ktnn::Model<Net, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 32});  // 32+32+32+4
  Kokkos::View<ktnn::LossSums*, Mem> slots("slots", loader.batches());
  auto step = [&](int b) {
    auto [bx, by] = loader.batch(b);
    ktnn::train_step(model, ktnn::CrossEntropy{}, adam, bx, by,
                     Kokkos::View<ktnn::LossSums, Mem>(slots.data() + b));
  };
  step(0);  // the first batch sizes the workspace
  Space{}.fence();
  allocations = fences = 0;
  fence_names.clear();
  Kokkos::Tools::Experimental::set_allocate_data_callback(count_allocation);
  Kokkos::Tools::Experimental::set_begin_fence_callback(count_fence);
  {  // The hooks do see allocations and fences (so zero below means zero).
    Kokkos::View<float*, Mem> probe("probe", 10);
    Space{}.fence();
  }
  CHECK(allocations == 1);
  CHECK(fences >= 1);
  allocations = fences = 0;
  fence_names.clear();
  for (int b = 0; b < loader.batches(); ++b) step(b);  // includes the partial batch
  Kokkos::Tools::Experimental::set_allocate_data_callback(nullptr);
  Kokkos::Tools::Experimental::set_begin_fence_callback(nullptr);
  CHECK(allocations == 0);
  std::string names;
  for (auto const& f : fence_names) names += f + "; ";
  INFO("fences: " << names);
  CHECK(fences == 0);
}
TEST_CASE_TEMPLATE_APPLY(step_no_alloc, ktnn_test::spaces);

namespace {
/// fit's own policy, counted, and silent: a policy of the caller's.
struct CountingPolicy {
  ktnn::LocalTraining local;
  int guards = 0, steps = 0, combines = 0, epochs_ended = 0;

  template <class F>
  decltype(auto) guard(char const* operation, F&& f) {
    ++guards;
    return local.guard(operation, std::forward<F>(f));
  }
  bool writes() const { return false; }
  template <class Loader>
  int batch_rows(Loader const& loader) const {
    return local.batch_rows(loader);
  }
  template <class Model, class Loss, class Optimizer, class Loader, class Sums>
  void step(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader, int b,
            Sums const& sums) {
    ++steps;
    local.step(model, loss, optimizer, loader, b, sums);
  }
  ktnn::LossSums combine(ktnn::LossSums const& sums) {
    ++combines;
    return sums;
  }
  template <class Model>
  void end_epoch(Model&) {
    ++epochs_ended;
  }
};
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("fit_with runs fit's loop under the caller's policy", Space,
                          fit_with_policy) {
  auto data = wave<Space>(8);  // 64 samples: 4 batches of 16
  using Loader = ktnn::data::DataLoader<decltype(data), Space>;
  using Model = ktnn::Model<WaveNet, double, Space>;
  using Optimizer = ktnn::Adam<double, Space>;
  static_assert(ktnn::TrainingPolicy<ktnn::LocalTraining, Model, ktnn::MSE, Optimizer, Loader>);
  static_assert(ktnn::TrainingPolicy<CountingPolicy, Model, ktnn::MSE, Optimizer, Loader>);
  static_assert(!ktnn::TrainingPolicy<int, Model, ktnn::MSE, Optimizer, Loader>);
  auto train = [&](auto&& run) {
    Model model(7);
    Optimizer adam(model, {.lr = 1e-2});
    Loader loader(data, {.batch_size = 16, .seed = 3});
    auto const history = run(model, adam, loader);
    return std::pair(history, ktnn_test::to_vector(model.parameters()));
  };
  std::ostringstream log;
  ktnn::FitOptions options;
  options.epochs = 3;
  options.out = &log;  // a policy that does not write prints nothing
  CountingPolicy policy;
  auto const [counted, counted_params] = train([&](Model& model, Optimizer& adam, Loader& loader) {
    return ktnn::fit_with(policy, model, ktnn::MSE{}, adam, loader, options);
  });
  CHECK(policy.steps == 3 * 4);
  CHECK(policy.combines == 3);
  CHECK(policy.epochs_ended == 3);
  CHECK(policy.guards == 1 + 3 * 2);  // the checks, then each epoch's two
  CHECK(log.str().empty());
  options.out = nullptr;
  auto const [plain, plain_params] = train([&](Model& model, Optimizer& adam, Loader& loader) {
    return ktnn::fit(model, ktnn::MSE{}, adam, loader, options);
  });
  REQUIRE(counted.size() == 3);
  REQUIRE(plain.size() == 3);
  for (int e = 0; e < 3; ++e) CHECK(counted[e].loss == plain[e].loss);
  CHECK(counted_params == plain_params);  // the same loop: the same bits
}
TEST_CASE_TEMPLATE_APPLY(fit_with_policy, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("evaluate_rows: a range of a dataset of Views or of a function", Space,
                          evaluate_rows) {
  using Mem = typename Space::memory_space;
  int const side = 10;  // 100 samples
  auto const views = wave<Space>(side);
  auto const function =
      ktnn::data::make_function_dataset<double, 2, 1, Mem>(views.size(), WaveSample{side});
  ktnn::Model<WaveNet, double, Space> model(5);
  auto const whole = ktnn::evaluate(model, ktnn::MSE{}, views, 16);
  auto const head = ktnn::evaluate_rows(model, ktnn::MSE{}, views, 0, 37, 16);
  auto const tail = ktnn::evaluate_rows(model, ktnn::MSE{}, views, 37, 100, 16);
  CHECK(head.count == 37);
  CHECK(tail.count == 63);
  CHECK(head.loss + tail.loss == doctest::Approx(whole.loss).epsilon(1e-12));
  CHECK(head.loss != doctest::Approx(tail.loss).epsilon(1e-3));  // different rows
  // Rows [37, 100) of the function: the same samples in the same batches.
  auto const tail_function = ktnn::evaluate_rows(model, ktnn::MSE{}, function, 37, 100, 16);
  CHECK(tail_function.count == 63);
  CHECK(tail_function.loss == tail.loss);
  CHECK_THROWS_WITH_AS(ktnn::evaluate_rows(model, ktnn::MSE{}, views, 0, 10, 0),
                       doctest::Contains("batch size must be positive"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(evaluate_rows, ktnn_test::spaces);
