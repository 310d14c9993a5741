// Training end to end: a small problem reaches a known loss, runs are
// bitwise reproducible, partial batches count, metrics reach CSV and callbacks.

#include "helpers.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {
/// y = sin(2 x0) * x1 on [-1, 1]^2: n samples on a grid.
template <class Space>
ktnn::data::RegressionDataset<double, 2, typename Space::memory_space> wave(int side) {
  using Mem = typename Space::memory_space;
  int const n = side * side;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> x("x", n, 2), y("y", n, 1);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        double const a = -1.0 + 2.0 * (i % side) / (side - 1);
        double const b = -1.0 + 2.0 * (i / side) / (side - 1);
        x(i, 0) = a;
        x(i, 1) = b;
        y(i, 0) = Kokkos::sin(2 * a) * b;
      });
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
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", 4, 2);
  Kokkos::View<int*, Mem> y("y", 4);
  auto xh = Kokkos::create_mirror_view(x);
  auto yh = Kokkos::create_mirror_view(y);
  for (int i = 0; i < 4; ++i) {
    xh(i, 0) = float(i & 1);
    xh(i, 1) = float((i >> 1) & 1);
    yh(i) = (i & 1) ^ ((i >> 1) & 1);
  }
  Kokkos::deep_copy(x, xh);
  Kokkos::deep_copy(y, yh);
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
