// Datasets over the user's own memory: Views of any layout wrapped without a
// copy, device functors that gather samples from simulation fields, and a
// loader re-pointed at a grown dataset without reallocating every round.

#include "helpers.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

namespace {
// Input feature j and target value k of sample i: exact in float, distinct for
// every (i, j) and (i, k), and i = input(i, 0) / 100.
KOKKOS_INLINE_FUNCTION float input_value(std::size_t i, std::size_t j) {
  return float(100 * i + j);
}
KOKKOS_INLINE_FUNCTION float target_value(std::size_t i, std::size_t k) {
  return float(100 * i + 50 + k);
}
KOKKOS_INLINE_FUNCTION int label_of(std::size_t i) {
  return int(3 * i + 1);
}

/// Sets every element of a rank-2 View to f(i, j), through a host mirror.
template <class View, class F>
void fill(View const& v, F const& f) {
  auto host = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < host.extent(0); ++i)
    for (std::size_t j = 0; j < host.extent(1); ++j) host(i, j) = f(i, j);
  Kokkos::deep_copy(v, host);
}

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> out(n);
  std::iota(out.begin(), out.end(), std::size_t(0));
  return out;
}

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Reads every batch of the loader's current epoch, checks that each row is
/// the source row of the sample it names (inputs and targets paired), and
/// returns those samples in batch order.
template <class Loader>
std::vector<std::size_t> epoch_samples(Loader& loader) {
  constexpr std::size_t features = Loader::features;
  std::vector<std::size_t> seen;
  for (int b = 0; b < loader.batches(); ++b) {
    auto [bx, by] = loader.batch(b);
    auto const xs = ktnn_test::to_vector(bx.view());
    auto const ys = ktnn_test::to_vector(by);
    std::size_t const rows = bx.batch();
    REQUIRE(by.extent(0) == rows);
    for (std::size_t r = 0; r < rows; ++r) {
      auto const i = std::size_t(xs[features * r]) / 100;
      INFO("batch " << b << ", row " << r << ", sample " << i);
      for (std::size_t j = 0; j < features; ++j) CHECK(xs[features * r + j] == input_value(i, j));
      if constexpr (Loader::dataset_type::has_class_labels) {
        CHECK(ys[r] == label_of(i));
      } else {
        std::size_t const width = by.extent(1);
        for (std::size_t k = 0; k < width; ++k) CHECK(ys[width * r + k] == target_value(i, k));
      }
      seen.push_back(i);
    }
  }
  return seen;
}

/// Every batch of the current epoch, inputs then targets, flattened.
template <class Loader>
std::vector<std::vector<double>> epoch_values(Loader& loader) {
  std::vector<std::vector<double>> out;
  for (int b = 0; b < loader.batches(); ++b) {
    auto [bx, by] = loader.batch(b);
    out.push_back(ktnn_test::to_vector(bx.view()));
    out.push_back(ktnn_test::to_vector(by));
  }
  return out;
}

/// A simulation's field, n x 4 in LayoutLeft (Fortran order): three inputs
/// and one target per sample, gathered by the loader without a dataset copy.
/// A named functor, so datasets of every size share one type and reset()
/// takes them.
template <class MemorySpace>
struct FieldSamples {
  Kokkos::View<float**, Kokkos::LayoutLeft, MemorySpace> field;
  KOKKOS_FUNCTION void operator()(std::size_t i, float* x, float* y) const {
    for (int j = 0; j < 3; ++j) x[j] = field(i, j);
    y[0] = field(i, 3);
  }
};

template <class MemorySpace>
Kokkos::View<float**, Kokkos::LayoutLeft, MemorySpace> make_field(std::size_t n) {
  Kokkos::View<float**, Kokkos::LayoutLeft, MemorySpace> field("field", n, 4);
  fill(field,
       [](std::size_t i, std::size_t j) { return j < 3 ? input_value(i, j) : target_value(i, 0); });
  return field;
}

// Kokkos Tools allocation hook: the labels of what was allocated while a log
// is open.
std::vector<std::string> allocated;
void record_allocation(Kokkos_Profiling_SpaceHandle, char const* label, void const*,
                       std::uint64_t) {
  allocated.emplace_back(label);
}
struct AllocationLog {
  AllocationLog() {
    allocated.clear();
    Kokkos::Tools::Experimental::set_allocate_data_callback(record_allocation);
  }
  ~AllocationLog() { Kokkos::Tools::Experimental::set_allocate_data_callback(nullptr); }
  AllocationLog(AllocationLog const&) = delete;
  AllocationLog& operator=(AllocationLog const&) = delete;
  std::size_t total() const { return allocated.size(); }
  std::size_t count(std::string const& label) const {
    return std::size_t(std::count(allocated.begin(), allocated.end(), label));
  }
  /// Allocations other than the loader's order buffer and its host mirror.
  std::size_t others() const {
    return total() - count("ktnn::DataLoader::order") - count("ktnn::DataLoader::order_mirror");
  }
  std::string names() const {
    std::string out;
    for (auto const& label : allocated) out += label + "; ";
    return out;
  }
};
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("make_dataset wraps LayoutLeft inputs and targets without a copy", Space,
                          sources_layout_left) {
  using Mem = typename Space::memory_space;
  std::size_t const n = 23;
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> x("x", n, 3), y("y", n, 2);
  fill(x, input_value);
  fill(y, target_value);
  auto data = ktnn::data::make_dataset<3>(Space{}, x, y);
  using Data = decltype(data);
  static_assert(std::is_same_v<typename Data::input_layout, Kokkos::LayoutLeft>);
  static_assert(
      std::is_same_v<typename Data::target_view, Kokkos::View<float**, Kokkos::LayoutLeft, Mem>>);
  CHECK(data.inputs.data() == x.data());
  CHECK(data.targets.data() == y.data());
  CHECK(data.size() == n);
  CHECK(data.target_width() == 2);

  using Loader = ktnn::data::DataLoader<Data, Space>;
  static_assert(std::is_same_v<typename Loader::input_batch,
                               ktnn::Tensor<float, 3, Kokkos::LayoutRight, Mem>>);
  static_assert(std::is_same_v<typename Loader::batch_target_view,
                               Kokkos::View<float**, Kokkos::LayoutRight, Mem>>);
  static_assert(
      std::is_same_v<decltype(std::declval<Loader&>().batch(0)),
                     std::pair<typename Loader::input_batch, typename Loader::batch_target_view>>);
  Loader ordered(data, {.batch_size = 5, .shuffle = false});
  CHECK(ordered.batches() == 5);
  CHECK(epoch_samples(ordered) == iota(n));

  Loader shuffled(data, {.batch_size = 5, .seed = 4});
  auto const order = epoch_samples(shuffled);  // checks every row's inputs and targets
  CHECK(order != iota(n));
  CHECK(sorted(order) == iota(n));

  // The layout does not change the order: the same data in LayoutRight, same
  // seed, same batches. LayoutRight Views give the existing dataset types.
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x_right("x_right", n, 3),
      y_right("y_right", n, 2);
  Kokkos::deep_copy(x_right, x);
  Kokkos::deep_copy(y_right, y);
  auto right = ktnn::data::make_dataset<3>(x_right, y_right);
  static_assert(std::is_same_v<decltype(right), ktnn::data::RegressionDataset<float, 3, Mem>>);
  ktnn::data::DataLoader<decltype(right), Space> same_seed(right, {.batch_size = 5, .seed = 4});
  CHECK(epoch_samples(same_seed) == order);
  shuffled.start_epoch(0);
  CHECK(epoch_values(shuffled) == epoch_values(same_seed));

  // Memory the user allocated outside Kokkos (e.g. a Fortran code's arrays)
  // arrives as unmanaged Views; those are wrapped in place too.
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem, Kokkos::MemoryUnmanaged> x_unmanaged(x.data(), n,
                                                                                      3);
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem, Kokkos::MemoryUnmanaged> y_unmanaged(y.data(), n,
                                                                                      2);
  auto unmanaged = ktnn::data::make_dataset<3>(x_unmanaged, y_unmanaged);
  static_assert(std::is_same_v<decltype(unmanaged), Data>);
  CHECK(unmanaged.inputs.data() == x.data());
  CHECK(unmanaged.targets.data() == y.data());
  Loader from_unmanaged(unmanaged, {.batch_size = 5, .seed = 4});
  CHECK(epoch_samples(from_unmanaged) == order);

  // Nothing was copied: a write to the user's View shows in the next batch.
  ktnn_test::set_element(x, -7.0, 2, 1);
  ktnn_test::set_element(y, -9.0, 3, 0);
  auto [bx, by] = ordered.batch(0);
  CHECK(ktnn_test::to_vector(bx.view())[3 * 2 + 1] == -7.0);
  CHECK(ktnn_test::to_vector(by)[2 * 3 + 0] == -9.0);
}
TEST_CASE_TEMPLATE_APPLY(sources_layout_left, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("make_dataset wraps strided subviews and const Views", Space,
                          sources_strided) {
  using Mem = typename Space::memory_space;
  std::size_t const n = 17;
  // Rows [2, n + 2) and columns [3, 6) of a bigger LayoutRight View.
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> big("big", n + 5, 8);
  fill(big, [&](std::size_t i, std::size_t j) {
    bool const inside = i >= 2 && i < n + 2 && j >= 3 && j < 6;
    return inside ? input_value(i - 2, j - 3) : -1.0f;
  });
  auto block = Kokkos::subview(big, std::make_pair(std::size_t(2), n + 2), std::make_pair(3, 6));
  // Kokkos may call the block a (padded) LayoutRight; as LayoutStride, it is
  // what a general strided subview of a user's array is.
  Kokkos::View<float**, Kokkos::LayoutStride, Mem> const x = block;
  // Labels: column 1 of a table, so every other int.
  Kokkos::View<int**, Kokkos::LayoutRight, Mem> table("table", n, 2);
  fill(table, [](std::size_t i, std::size_t j) { return j == 1 ? label_of(i) : -1; });
  auto labels = Kokkos::subview(table, Kokkos::ALL, 1);
  static_assert(std::is_same_v<typename decltype(labels)::array_layout, Kokkos::LayoutStride>);

  auto data = ktnn::data::make_dataset<3>(x, labels);
  using Data = decltype(data);
  static_assert(std::is_same_v<typename Data::input_layout, Kokkos::LayoutStride>);
  static_assert(
      std::is_same_v<typename Data::target_view, Kokkos::View<int*, Kokkos::LayoutStride, Mem>>);
  CHECK(data.inputs.data() == x.data());
  CHECK(data.targets.data() == labels.data());
  CHECK(data.target_width() == 0);
  auto const as_kokkos_made_it = ktnn::data::make_dataset<3>(block, labels);
  CHECK(as_kokkos_made_it.inputs.data() == block.data());
  using Loader = ktnn::data::DataLoader<Data, Space>;
  static_assert(std::is_same_v<typename Loader::batch_target_view, Kokkos::View<int*, Mem>>);
  Loader ordered(data, {.batch_size = 4, .shuffle = false});
  CHECK(ordered.batches() == 5);
  CHECK(epoch_samples(ordered) == iota(n));
  Loader shuffled(data, {.batch_size = 4, .seed = 8});
  for (int epoch = 0; epoch < 2; ++epoch) {
    shuffled.start_epoch(epoch);
    auto const order = epoch_samples(shuffled);
    CHECK(order != iota(n));
    CHECK(sorted(order) == iota(n));
  }

  // A row range of a LayoutLeft field, read through const Views, with 64-bit
  // labels: batches are still float inputs and int labels.
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> field("field", n + 6, 3);
  fill(field, [](std::size_t i, std::size_t j) { return i >= 4 ? input_value(i - 4, j) : -1.0f; });
  Kokkos::View<std::int64_t*, Mem> wide_labels("wide_labels", n);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n),
      KOKKOS_LAMBDA(std::size_t i) { wide_labels(i) = label_of(i); });
  Kokkos::View<float const**, Kokkos::LayoutLeft, Mem> const rows =
      Kokkos::subview(field, std::make_pair(std::size_t(4), n + 4), Kokkos::ALL);
  Kokkos::View<std::int64_t const*, Mem> const const_labels = wide_labels;
  auto read_only = ktnn::data::make_dataset<3>(rows, const_labels);
  using ReadOnly = decltype(read_only);
  static_assert(std::is_same_v<typename ReadOnly::value_type, float>);
  CHECK(read_only.inputs.data() == rows.data());
  ktnn::data::DataLoader<ReadOnly, Space> const_loader(read_only, {.batch_size = 6, .seed = 1});
  static_assert(std::is_same_v<typename decltype(const_loader)::input_batch,
                               ktnn::Tensor<float, 3, Kokkos::LayoutRight, Mem>>);
  CHECK(sorted(epoch_samples(const_loader)) == iota(n));
}
TEST_CASE_TEMPLATE_APPLY(sources_strided, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a FunctionDataset gives the batches of the same data materialized",
                          Space, sources_function) {
  using Mem = typename Space::memory_space;
  std::size_t const n = 23;
  auto const field = make_field<Mem>(n);
  Kokkos::View<int*, Mem> labels("labels", n);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(std::size_t i) { labels(i) = label_of(i); });

  // The same samples materialized the usual way: LayoutRight copies.
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", n, 3), y("y", n, 1);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(std::size_t i) {
        for (int j = 0; j < 3; ++j) x(i, j) = field(i, j);
        y(i, 0) = field(i, 3);
      });
  ktnn::data::RegressionDataset<float, 3, Mem> values(ktnn::as_tensor<3>(x), y);
  ktnn::data::ClassificationDataset<float, 3, Mem> classes(ktnn::as_tensor<3>(x), labels);

  auto from_field =
      ktnn::data::make_function_dataset<float, 3, 1, Mem>(n, FieldSamples<Mem>{field});
  auto classes_from_field =
      ktnn::data::make_function_dataset<float, 3, ktnn::data::class_labels, Mem>(
          n, KOKKOS_LAMBDA(std::size_t i, float* sample, int& label) {
            for (int j = 0; j < 3; ++j) sample[j] = field(i, j);
            label = labels(i);
          });
  CHECK(from_field.size() == n);
  CHECK(from_field.target_width() == 1);
  CHECK(classes_from_field.target_width() == 0);

  using ValuesLoader = ktnn::data::DataLoader<decltype(from_field), Space>;
  using ClassesLoader = ktnn::data::DataLoader<decltype(classes_from_field), Space>;
  static_assert(
      std::is_same_v<typename ValuesLoader::input_batch,
                     typename ktnn::data::DataLoader<decltype(values), Space>::input_batch>);
  static_assert(
      std::is_same_v<typename ValuesLoader::batch_target_view,
                     typename ktnn::data::DataLoader<decltype(values), Space>::batch_target_view>);
  static_assert(std::is_same_v<typename ClassesLoader::batch_target_view, Kokkos::View<int*, Mem>>);

  for (bool const shuffle : {false, true}) {
    INFO("shuffle " << shuffle);
    ktnn::data::LoaderOptions const options{.batch_size = 6, .shuffle = shuffle, .seed = 11};
    ValuesLoader a(from_field, options);
    ktnn::data::DataLoader<decltype(values), Space> b(values, options);
    ClassesLoader c(classes_from_field, options);
    ktnn::data::DataLoader<decltype(classes), Space> d(classes, options);
    CHECK(a.batches() == 4);  // 6 + 6 + 6 + 5
    for (int epoch = 0; epoch < 2; ++epoch) {
      a.start_epoch(epoch);
      b.start_epoch(epoch);
      c.start_epoch(epoch);
      d.start_epoch(epoch);
      auto const from_a = epoch_values(a);
      CHECK(from_a == epoch_values(b));
      CHECK(epoch_values(c) == epoch_values(d));
      a.start_epoch(epoch);
      auto const order = epoch_samples(a);  // and each row is the field's
      CHECK(sorted(order) == iota(n));
      if (!shuffle) CHECK(order == iota(n));
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(sources_function, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("reset re-points a loader at a grown dataset, allocating rarely", Space,
                          sources_reset) {
  using Mem = typename Space::memory_space;
  std::size_t const total = 100;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x_all("x_all", total, 3);
  Kokkos::View<int*, Mem> y_all("y_all", total);
  fill(x_all, input_value);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, total),
      KOKKOS_LAMBDA(std::size_t i) { y_all(i) = label_of(i); });
  // The first m samples, as a simulation that appends to its fields sees them.
  auto first = [&](std::size_t m) {
    auto const rows = std::make_pair(std::size_t(0), m);
    return ktnn::data::make_dataset<3>(Kokkos::subview(x_all, rows, Kokkos::ALL),
                                       Kokkos::subview(y_all, rows));
  };
  using Data = decltype(first(0));
  static_assert(std::is_same_v<Data, ktnn::data::ClassificationDataset<float, 3, Mem>>);
  ktnn::data::DataLoader<Data, Space> loader(first(20), {.batch_size = 8, .seed = 3});
  CHECK(loader.batches() == 3);
  CHECK(loader.capacity() == 20);

  {  // The hook does see allocations (so zero below means zero).
    AllocationLog log;
    Kokkos::View<float*, Mem> probe("probe", 10);
    CHECK(log.total() == 1);
  }

  {  // Shrinking and growing back within capacity: no allocation at all.
    AllocationLog log;
    loader.reset(first(12));
    CHECK(loader.batches() == 2);
    for (int b = 0; b < loader.batches(); ++b) loader.batch(b);
    loader.reset(first(20));
    for (int b = 0; b < loader.batches(); ++b) loader.batch(b);
    INFO("allocated: " << log.names());
    CHECK(log.total() == 0);
  }
  CHECK(sorted(epoch_samples(loader)) == iota(20));

  {  // Beyond capacity: one new order buffer (and its host mirror where the
     // data lives on a device); the batch buffers are kept.
    AllocationLog log;
    loader.reset(first(50));
    for (int b = 0; b < loader.batches(); ++b) loader.batch(b);
    INFO("allocated: " << log.names());
    CHECK(log.count("ktnn::DataLoader::order") == 1);
    CHECK(log.others() == 0);
  }
  CHECK(loader.capacity() == 50);
  CHECK(loader.batches() == 7);
  auto const seen = epoch_samples(loader);
  CHECK(seen != iota(50));
  CHECK(sorted(seen) == iota(50));

  {  // Growth is geometric: 60 samples reserve 100, so 100 fit without more.
    AllocationLog log;
    loader.reset(first(60));
    loader.reset(first(100));
    for (int b = 0; b < loader.batches(); ++b) loader.batch(b);
    INFO("allocated: " << log.names());
    CHECK(log.count("ktnn::DataLoader::order") == 1);
    CHECK(log.others() == 0);
  }
  CHECK(loader.capacity() == 100);
  CHECK(loader.batches() == 13);
  auto const all = epoch_samples(loader);
  CHECK(sorted(all) == iota(100));
  // reset starts epoch 0 as the constructor does: a new loader agrees.
  ktnn::data::DataLoader<Data, Space> fresh(first(100), {.batch_size = 8, .seed = 3});
  CHECK(epoch_samples(fresh) == all);
  loader.start_epoch(1);
  CHECK(sorted(epoch_samples(loader)) == iota(100));

  // From an empty dataset.
  ktnn::data::DataLoader<Data, Space> empty(first(0), {.batch_size = 8});
  CHECK(empty.batches() == 0);
  CHECK(empty.samples() == 0);
  empty.reset(first(5));
  CHECK(empty.batches() == 1);
  CHECK(sorted(epoch_samples(empty)) == iota(5));
  empty.reset(first(0));
  CHECK(empty.batches() == 0);
}
TEST_CASE_TEMPLATE_APPLY(sources_reset, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("reset re-points a FunctionDataset loader at a grown field", Space,
                          sources_reset_function) {
  using Mem = typename Space::memory_space;
  auto const field = make_field<Mem>(40);
  auto first = [&](std::size_t m) {
    return ktnn::data::make_function_dataset<float, 3, 1, Mem>(m, FieldSamples<Mem>{field});
  };
  ktnn::data::DataLoader<decltype(first(0)), Space> loader(first(10), {.batch_size = 4, .seed = 5});
  CHECK(sorted(epoch_samples(loader)) == iota(10));
  {
    AllocationLog log;
    loader.reset(first(15));  // reserves max(15, 2 x 10)
    loader.reset(first(20));
    for (int b = 0; b < loader.batches(); ++b) loader.batch(b);
    INFO("allocated: " << log.names());
    CHECK(log.count("ktnn::DataLoader::order") == 1);
    CHECK(log.others() == 0);
  }
  CHECK(loader.capacity() == 20);
  CHECK(loader.batches() == 5);
  CHECK(sorted(epoch_samples(loader)) == iota(20));
  loader.reset(first(40));
  CHECK(loader.capacity() == 40);
  CHECK(loader.batches() == 10);
  CHECK(sorted(epoch_samples(loader)) == iota(40));
}
TEST_CASE_TEMPLATE_APPLY(sources_reset_function, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("make_dataset and reset reject mismatched sizes", Space, sources_errors) {
  using Mem = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> x("x", 23, 3), four("four", 23, 4);
  Kokkos::View<int*, Mem> short_labels("short_labels", 22), labels("labels", 23);
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> short_values("short_values", 21, 2);
  CHECK_THROWS_WITH_AS(ktnn::data::make_dataset<3>(x, short_labels),
                       doctest::Contains("ktnn::data::make_dataset"), ktnn::Error);
  CHECK_THROWS_WITH_AS(
      ktnn::data::make_dataset<3>(x, short_labels),
      doctest::Contains(
          "the input View 'x' has 23 samples but the target View 'short_labels' has 22"),
      ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::data::make_dataset<3>(x, short_values),
                       doctest::Contains("ktnn::data::make_dataset: the input View 'x' has 23 "
                                         "samples but the target View 'short_values' has 21"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::data::make_dataset<3>(four, labels),
                       doctest::Contains("ktnn::data::make_dataset: the input View 'four' has 4 "
                                         "features per sample, expected 3"),
                       ktnn::Error);
  CHECK_NOTHROW(ktnn::data::make_dataset<3>(x, labels));

  // The batch buffers are sized for the targets' width, which reset keeps.
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> two("two", 23, 2), one("one", 23, 1);
  auto data = ktnn::data::make_dataset<3>(x, two);
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 5});
  CHECK_THROWS_WITH_AS(loader.reset(ktnn::data::make_dataset<3>(x, one)),
                       doctest::Contains("ktnn::data::DataLoader::reset: the dataset has 1 values "
                                         "per target, the loader's batches 2"),
                       ktnn::Error);
  CHECK(loader.batches() == 5);  // still the old dataset
}
TEST_CASE_TEMPLATE_APPLY(sources_errors, ktnn_test::spaces);
