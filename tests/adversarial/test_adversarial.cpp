// Hostile input, one case each: every one must end in a ktnn::Error whose
// message names the operation (or, where the contract says so, be survived
// with nothing silently wrong). Built with the rest of the tests, so the
// sanitizer preset runs it under AddressSanitizer and UBSan.

#include "../helpers.hpp"

#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

namespace {
using Net = ktnn::Sequential<ktnn::Dense<3, 8, ktnn::ReLU>, ktnn::Dense<8, 4>>;

template <class Space>
using Mem = typename Space::memory_space;

/// Labels i % 4, with label `bad` at sample `at` and `poison` at input
/// (at, 1). (A function of its own: nvcc takes no device lambda in a function
/// with a deduced return type.)
template <class Space, class X, class Y>
void label_samples(X const& x, Y const& y, int at, int bad, double poison) {
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, 40), KOKKOS_LAMBDA(int i) {
        y(i) = i == at ? bad : i % 4;
        if (i == at && poison != 0.0) x(i, 1) = float(poison);
      });
}

/// 40 samples of 3 features in [0, 1) and labels i % 4, with label `bad` at
/// sample `at` (when at >= 0) and `poison` at input (at, 1) (when finite is
/// false).
template <class Space>
auto classification(int at = -1, int bad = 0, double poison = 0.0) {
  Kokkos::View<float**, Kokkos::LayoutRight, Mem<Space>> x("x", 40, 3);
  Kokkos::View<int*, Mem<Space>> y("y", 40);
  ktnn_test::fill_uniform(x, 5, 0.0, 1.0);
  label_samples<Space>(x, y, at, bad, poison);
  return ktnn::data::make_dataset<3>(x, y);
}

template <class Model, class Optimizer, class Data>
auto fit_quietly(Model& model, Optimizer& optimizer, Data const& data,
                 ktnn::FitOptions options = {}) {
  using Space = typename Model::execution_space;
  ktnn::data::DataLoader<Data, Space> loader(data, {.batch_size = 16});
  if (options.epochs == 1) options.epochs = 2;
  return ktnn::fit(model, ktnn::CrossEntropy{}, optimizer, loader, options);
}

std::filesystem::path scratch(std::string const& name) {
  return std::filesystem::temp_directory_path() / ("ktnn_adversarial_" + name);
}

void write_gzip(std::filesystem::path const& path, std::vector<std::uint8_t> const& head,
                std::size_t zeros) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  gzwrite(f, head.data(), unsigned(head.size()));
  std::vector<std::uint8_t> block(1 << 20, 0);
  for (std::size_t done = 0; done < zeros; done += block.size())
    gzwrite(f, block.data(), unsigned(std::min(block.size(), zeros - done)));
  gzclose(f);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("class labels outside the model's classes", Space, labels) {
  for (int bad : {4, -1, 1 << 30, std::numeric_limits<int>::min()}) {
    INFO("label " << bad);
    auto data = classification<Space>(17, bad);
    ktnn::Model<Net, float, Space> model(1);
    auto const before = ktnn_test::to_vector(model.parameters());
    ktnn::Adam<float, Space> adam(model);
    std::string const expected =
        "ktnn::fit: class label " + std::to_string(bad) + " of sample 17 is outside [0, 4)";
    CHECK_THROWS_WITH_AS(fit_quietly(model, adam, data), doctest::Contains(expected.c_str()),
                         ktnn::Error);
    CHECK(ktnn_test::to_vector(model.parameters()) == before);  // checked before training
    // The kernels never index with such a label: a step on the raw batch
    // counts it and trains nothing on that sample.
    auto sums = ktnn::train_step(model, ktnn::CrossEntropy{}, adam, data.inputs, data.targets);
    ktnn::LossSums host;
    Kokkos::deep_copy(host, sums);
    CHECK(host.invalid_labels == 1);
    CHECK(host.bad_label == double(bad));
    CHECK(std::isfinite(host.loss));
    // evaluate turns it into an error.
    CHECK_THROWS_WITH_AS(ktnn::evaluate(model, ktnn::CrossEntropy{}, data),
                         doctest::Contains("ktnn::evaluate: batch 0: 1 class label(s) outside"),
                         ktnn::Error);
  }
  // A model with fewer outputs than the dataset's classes.
  using Small = ktnn::Sequential<ktnn::Dense<3, 2>>;
  ktnn::Model<Small, float, Space> small(1);
  CHECK_THROWS_WITH_AS(ktnn::evaluate(small, ktnn::CrossEntropy{}, classification<Space>()),
                       doctest::Contains("outside [0, 2)"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(labels, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("inputs and gradients that are not finite", Space, non_finite) {
  double const nan = std::numeric_limits<double>::quiet_NaN();
  for (double poison : {nan, std::numeric_limits<double>::infinity()}) {
    INFO("poison " << poison);
    auto data = classification<Space>(9, 1, poison);
    ktnn::Model<Net, float, Space> model(1);
    ktnn::Adam<float, Space> adam(model);
    CHECK_THROWS_WITH_AS(fit_quietly(model, adam, data),
                         doctest::Contains("ktnn::fit: input sample 9 has"), ktnn::Error);
    // Unchecked, the NaN reaches the gradients; the optimizer leaves those
    // elements alone and fit stops naming the step, with finite parameters.
    ktnn::FitOptions unchecked;
    unchecked.check_inputs = false;
    CHECK_THROWS_WITH_AS(fit_quietly(model, adam, data, unchecked),
                         doctest::Contains("ktnn::fit: epoch 1: gradients that are not finite at "
                                           "optimizer step"),
                         ktnn::Error);
    for (double p : ktnn_test::to_vector(model.parameters())) CHECK(std::isfinite(p));
    // Asked to warn, it goes on, and the model still learns from the rest.
    std::ostringstream log;
    unchecked.on_non_finite = ktnn::FitOptions::NonFinite::warn;
    unchecked.out = &log;
    unchecked.epochs = 3;
    adam.clear_non_finite();
    ktnn::SGD<float, Space> sgd(model, {.lr = 0.05f, .momentum = 0.9f});
    fit_quietly(model, sgd, data, unchecked);
    CHECK(log.str().find("warning: epoch 1: gradients that are not finite") != std::string::npos);
    for (double p : ktnn_test::to_vector(model.parameters())) CHECK(std::isfinite(p));
    CHECK(sgd.non_finite_step() == -1);  // the warning cleared it
  }
}
TEST_CASE_TEMPLATE_APPLY(non_finite, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("regression targets that are not finite", Space, bad_targets) {
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem<Space>> x("x", 20, 3), y("y", 20, 4);
  ktnn_test::fill_uniform(x, 1);
  ktnn_test::fill_uniform(y, 2);
  ktnn_test::set_element(y, std::numeric_limits<double>::infinity(), 13, 3);
  auto data = ktnn::data::make_dataset<3>(x, y);
  ktnn::Model<Net, double, Space> model(1);
  ktnn::SGD<double, Space> sgd(model, {.lr = 0.01});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 8});
  CHECK_THROWS_WITH_AS(ktnn::fit(model, ktnn::MSE{}, sgd, loader),
                       doctest::Contains("ktnn::fit: target of sample 13 is not finite"),
                       ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(bad_targets, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("optimizer and fit options out of range", Space, options) {
  ktnn::Model<Net, float, Space> model(1);
  float const nan = std::numeric_limits<float>::quiet_NaN();
  float const inf = std::numeric_limits<float>::infinity();
  using AO = ktnn::AdamOptions<float>;
  auto adam_with = [&](AO o) { return ktnn::Adam<float, Space>(model, o); };
  CHECK_THROWS_WITH_AS(adam_with({.lr = nan}), doctest::Contains("ktnn::Adam: option lr is nan"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(adam_with({.lr = -1e-3f}), doctest::Contains("option lr is -0.001"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(adam_with({.lr = inf}), doctest::Contains("option lr is inf"), ktnn::Error);
  CHECK_THROWS_WITH_AS(adam_with({.beta1 = 1.0f}),
                       doctest::Contains("option beta1 is 1, must be [0, 1)"), ktnn::Error);
  CHECK_THROWS_WITH_AS(adam_with({.eps = 0.0f}), doctest::Contains("option eps is 0"), ktnn::Error);
  CHECK_THROWS_WITH_AS(adam_with({.weight_decay = -1.0f}),
                       doctest::Contains("option weight_decay is -1"), ktnn::Error);
  // Changed after construction: checked at the next step, before any update.
  auto adam = adam_with({});
  adam.options().lr = nan;
  auto const before = ktnn_test::to_vector(model.parameters());
  auto data = classification<Space>();
  CHECK_THROWS_WITH_AS(
      ktnn::train_step(model, ktnn::CrossEntropy{}, adam, data.inputs, data.targets),
      doctest::Contains("ktnn::Adam::step: option lr is nan"), ktnn::Error);
  CHECK(ktnn_test::to_vector(model.parameters()) == before);

  using SO = ktnn::SGDOptions<float>;
  CHECK_THROWS_WITH_AS((ktnn::SGD<float, Space>(model, SO{.momentum = -0.5f})),
                       doctest::Contains("ktnn::SGD: option momentum is -0.5"), ktnn::Error);
  CHECK_THROWS_WITH_AS((ktnn::SGD<float, Space>(model, SO{.nesterov = true})),
                       doctest::Contains("Nesterov momentum needs momentum > 0"), ktnn::Error);
  ktnn::SGD<float, Space> plain(model, SO{});
  plain.options().momentum = 0.9f;  // no velocity buffer was made for it
  CHECK_THROWS_WITH_AS(
      ktnn::train_step(model, ktnn::CrossEntropy{}, plain, data.inputs, data.targets),
      doctest::Contains("made without momentum"), ktnn::Error);

  ktnn::FitOptions bad;
  bad.epochs = -1;
  CHECK_THROWS_WITH_AS(fit_quietly(model, adam, data, bad),
                       doctest::Contains("ktnn::fit: option epochs is -1"), ktnn::Error);
  bad = {};
  bad.report_interval = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(fit_quietly(model, adam, data, bad),
                       doctest::Contains("option report_interval is nan"), ktnn::Error);
  bad = {};
  bad.csv_path = "/nonexistent-directory/metrics.csv";
  adam.options().lr = 1e-3f;
  CHECK_THROWS_WITH_AS(
      fit_quietly(model, adam, data, bad),
      doctest::Contains("cannot open metrics file '/nonexistent-directory/metrics.csv': No such "
                        "file or directory"),
      ktnn::Error);
  CHECK(ktnn_test::to_vector(model.parameters()) == before);  // before any training
}
TEST_CASE_TEMPLATE_APPLY(options, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("datasets with nothing to train on", Space, empty) {
  ktnn::Model<Net, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  Kokkos::View<float**, Kokkos::LayoutRight, Mem<Space>> x("x", 0, 3);
  Kokkos::View<int*, Mem<Space>> y("y", 0);
  auto none = ktnn::data::make_dataset<3>(x, y);
  CHECK_THROWS_WITH_AS(fit_quietly(model, adam, none),
                       doctest::Contains("ktnn::fit: the dataset has no samples"), ktnn::Error);
  auto few = classification<Space>();  // 40 samples
  ktnn::data::DataLoader<decltype(few), Space> dropping(few, {.batch_size = 64, .drop_last = true});
  CHECK_THROWS_WITH_AS(ktnn::fit(model, ktnn::CrossEntropy{}, adam, dropping),
                       doctest::Contains("an epoch would have no step: batch size 64"),
                       ktnn::Error);
  // A batch larger than the dataset without drop_last: one partial batch.
  ktnn::data::DataLoader<decltype(few), Space> one(few, {.batch_size = 64});
  auto const history = ktnn::fit(model, ktnn::CrossEntropy{}, adam, one);
  CHECK(history.back().samples == 40);
  CHECK_THROWS_WITH_AS(ktnn::evaluate(model, ktnn::CrossEntropy{}, few, 0),
                       doctest::Contains("ktnn::evaluate: batch size must be positive"),
                       ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(empty, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("standardisation, loaders and buffers given odd input", Space, odd) {
  using Arch = ktnn::Sequential<ktnn::Standardize<3>, ktnn::Dense<3, 2>>;
  ktnn::Model<Arch, double, Space> model(1);
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem<Space>> x("x", 30, 3), none("none", 0, 3);
  ktnn_test::fill_uniform(x, 2);
  ktnn_test::set_element(x, std::numeric_limits<double>::quiet_NaN(), 7, 2);
  auto const before = ktnn_test::to_vector(model.state());
  CHECK_THROWS_WITH_AS(ktnn::standardize(model, x, none),
                       doctest::Contains("ktnn::standardize: column 2 of the inputs has mean nan"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::standardize(model, none, none),
                       doctest::Contains("ktnn::standardize: the inputs have no samples"),
                       ktnn::Error);
  CHECK(ktnn_test::to_vector(model.state()) == before);  // nothing half-written

  // A prediction without columns (nothing to index).
  Kokkos::View<double**, Kokkos::LayoutRight, Mem<Space>> empty_logits("logits", 4, 0);
  Kokkos::View<int*, Mem<Space>> labels("labels", 4);
  Kokkos::View<ktnn::LossSums, Mem<Space>> sums("sums");
  CHECK_THROWS_WITH_AS(
      ktnn::compute_loss(Space{}, ktnn::CrossEntropy{}, empty_logits, labels, sums),
      doctest::Contains("ktnn::compute_loss: CrossEntropy: the prediction has no columns"),
      ktnn::Error);
  CHECK_THROWS_WITH_AS(
      ktnn::CrossEntropy{}(Space{}, ktnn::Matrix<double const>(ktnn::as_matrix(empty_logits)),
                           labels, ktnn::Matrix<double>{}, sums),
      doctest::Contains("ktnn::CrossEntropy: logits with no classes"), ktnn::Error);

  // A batch size far beyond the data: one partial batch, memory for the data.
  auto data = classification<Space>();
  ktnn::data::DataLoader<decltype(data), Space> huge(data, {.batch_size = 1 << 30});
  CHECK(huge.batches() == 1);
  CHECK(huge.batch(0).first.batch() == 40);

  // Feeding the model one of its own gradient buffers back as input.
  using Square = ktnn::Sequential<ktnn::Dense<3, 3, ktnn::Tanh>>;
  ktnn::Model<Square, double, Space> square(3);
  typename decltype(square)::batch_view in("in", 5, 3), copy("copy", 5, 3);
  ktnn_test::fill_uniform(in, 4);
  square.forward(in);
  square.backward(in, true);
  Kokkos::deep_copy(copy, square.input_gradient());
  auto const expected = ktnn_test::to_vector(square.forward(copy));
  square.forward(in);
  square.backward(in, true);
  CHECK(ktnn_test::to_vector(square.forward(square.input_gradient())) == expected);
}
TEST_CASE_TEMPLATE_APPLY(odd, ktnn_test::spaces);

TEST_CASE("IDX files that lie about their size") {
  auto const path = scratch("lying.idx.gz");
  // Three extents of 2^32 - 1: their product wraps a 64-bit size_t.
  write_gzip(path, {0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}, 16);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(path.string(), 3),
                       doctest::Contains("declares 4294967295 x 4294967295 x 4294967295 elements, "
                                         "more than the limit"),
                       ktnn::Error);
  // A product just under 2^64 / 2 that would pass a wrapped check.
  write_gzip(path, {0, 0, 8, 2, 128, 0, 0, 0, 128, 0, 0, 0}, 16);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(path.string(), 2),
                       doctest::Contains("more than the limit"), ktnn::Error);
  // A small file that inflates to 64 MiB behind a header declaring 10 bytes:
  // rejected after reading a bounded amount, never holding the rest.
  write_gzip(path, {0, 0, 8, 1, 0, 0, 0, 10}, std::size_t(64) << 20);
  CHECK(std::filesystem::file_size(path) < 200000);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(path.string(), 1),
                       doctest::Contains("declares 10 elements but holds more than"), ktnn::Error);
  // Declared within a caller's limit or not.
  write_gzip(path, {0, 0, 8, 1, 0, 0, 0, 100}, 100);
  CHECK(ktnn::data::read_idx(path.string(), 1).bytes.size() == 100);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(path.string(), 1, 50),
                       doctest::Contains("more than the limit of 50"), ktnn::Error);
  // A directory and a missing file say so (the latter with errno's text).
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(std::filesystem::temp_directory_path().string(), 1),
                       doctest::Contains("it is a directory"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx("/nonexistent/file.idx", 1),
                       doctest::Contains("cannot open '/nonexistent/file.idx': No such file"),
                       ktnn::Error);
  std::filesystem::remove(path);
}
