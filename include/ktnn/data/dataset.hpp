#pragma once
/// \file Datasets and a loader that cuts them into (optionally shuffled)
/// batches on the device.
///
/// A dataset is either the user's own Views (Dataset: inputs and targets of
/// any layout, LayoutLeft fields and strided subviews included, wrapped
/// without a copy) or a device functor that writes sample i on demand
/// (FunctionDataset), so a simulation can train on its fields without first
/// copying them into a dataset. Each epoch, the loader draws a permutation on
/// the host (Fisher-Yates keyed by (seed, epoch), so the order is the same on
/// every backend and for every layout), copies it over, and gathers each batch
/// with one kernel into LayoutRight buffers allocated once. The last batch may
/// be partial.

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/core/tensor.hpp>
#include <ktnn/data/idx.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn::detail {
/// Class labels: any integer type but bool (a bool View is more likely a mask
/// passed by mistake than two classes).
template <class Label>
inline constexpr bool is_label_type =
    std::is_integral_v<std::remove_cv_t<Label>> && !std::is_same_v<std::remove_cv_t<Label>, bool>;

/// The layouts a Kokkos::View (and so a ktnn::Tensor) can be viewed through
/// without a copy.
template <class Layout>
inline constexpr bool is_wrappable_layout =
    std::is_same_v<Layout, Kokkos::LayoutRight> || std::is_same_v<Layout, Kokkos::LayoutLeft> ||
    std::is_same_v<Layout, Kokkos::LayoutStride>;

// What make_dataset stores a user's targets as. Contiguous labels become
// View<L*, Mem> whatever their layout (for rank 1, LayoutLeft and LayoutRight
// are the same memory), so int labels give exactly ClassificationDataset's
// target type, and LayoutRight values RegressionDataset's.
template <class Labels>
using dataset_label_view = std::conditional_t<
    std::is_same_v<typename Labels::array_layout, Kokkos::LayoutStride>,
    Kokkos::View<typename Labels::value_type*, Kokkos::LayoutStride, typename Labels::memory_space>,
    Kokkos::View<typename Labels::value_type*, typename Labels::memory_space>>;
template <class Targets>
using dataset_target_view =
    std::conditional_t<Targets::rank() == 1, dataset_label_view<Targets>,
                       Kokkos::View<typename Targets::value_type**, typename Targets::array_layout,
                                    typename Targets::memory_space>>;
}  // namespace ktnn::detail

namespace ktnn::data {

/// Inputs (n x Features) and targets (n class labels, or n x width values),
/// Views in one memory space. Nothing is copied: a dataset over a user's
/// LayoutLeft or strided View reads that View, and sees later writes to it.
///
/// \tparam T           the inputs' value type; const is fine (the loader only
///                     reads a dataset)
/// \tparam TargetView  a rank-1 View of an integer type (class labels) or a
///                     rank-2 View (samples, width) of values, any layout
/// \tparam InputLayout the layout of the inputs' View: LayoutRight, LayoutLeft
///                     or LayoutStride (a subview)
///
/// make_dataset deduces all of these from the user's Views.
template <class T, int Features, class TargetView, class InputLayout = Kokkos::LayoutRight>
struct Dataset {
  static_assert(Kokkos::is_view_v<TargetView>,
                "ktnn::data::Dataset: TargetView must be a Kokkos::View");
  static_assert(TargetView::rank() == 1 || TargetView::rank() == 2,
                "ktnn::data::Dataset: the targets are a rank-1 View of class labels or a rank-2 "
                "View (samples, width) of values");
  static_assert(TargetView::rank() == 2 || detail::is_label_type<typename TargetView::value_type>,
                "ktnn::data::Dataset: rank-1 targets are class labels and must be of an integer "
                "type");

  using value_type = std::remove_const_t<T>;
  using memory_space = typename TargetView::memory_space;
  using input_layout = InputLayout;
  using input_tensor = Tensor<T, Features, InputLayout, memory_space>;
  using target_view = TargetView;
  using target_value_type = std::remove_const_t<typename TargetView::value_type>;
  static constexpr int features = Features;
  static constexpr bool has_class_labels = TargetView::rank() == 1;

  input_tensor inputs;
  TargetView targets;

  std::size_t size() const { return inputs.batch(); }
  /// Values per target; 0 for class labels.
  std::size_t target_width() const {
    if constexpr (has_class_labels)
      return 0;
    else
      return targets.extent(1);
  }

  Dataset() = default;
  Dataset(input_tensor x, TargetView y) : inputs(std::move(x)), targets(std::move(y)) {
    if (targets.extent(0) != inputs.batch())
      detail::fail("ktnn::data::Dataset", inputs.batch(), " inputs but ", targets.extent(0),
                   " targets");
  }
};

/// Class-index targets.
template <class T, int Features, class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
using ClassificationDataset = Dataset<T, Features, Kokkos::View<int*, MemorySpace>>;
/// Real-valued targets, one row per sample.
template <class T, int Features, class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
using RegressionDataset = Dataset<T, Features, Kokkos::View<T**, Kokkos::LayoutRight, MemorySpace>>;

/// The Dataset over `x` (samples, Features) and `y` (samples) of class labels
/// or (samples, width) of values, without a copy: the result's inputs and
/// targets point at x's and y's data. Any layout works (LayoutLeft fields,
/// LayoutStride subviews), and const Views too. Throws ktnn::Error when x does
/// not have Features columns or x and y differ in samples.
///
/// With an execution space first, also checks at compile time that it can
/// read the Views (e.g. that host Views are not handed to a GPU loader).
template <int Features, class InputView, class TargetView>
auto make_dataset(InputView const& x, TargetView const& y) {
  constexpr bool views = Kokkos::is_view_v<InputView> && Kokkos::is_view_v<TargetView>;
  static_assert(views,
                "ktnn::data::make_dataset: the inputs and the targets must be Kokkos::Views");
  if constexpr (views) {
    static_assert(Features > 0, "ktnn::data::make_dataset: Features must be positive");
    constexpr bool rank_x = InputView::rank() == 2;
    static_assert(rank_x,
                  "ktnn::data::make_dataset: the inputs must be a rank-2 View (samples, features)");
    constexpr bool rank_y = TargetView::rank() == 1 || TargetView::rank() == 2;
    static_assert(rank_y,
                  "ktnn::data::make_dataset: the targets must be a rank-1 View of class labels or "
                  "a rank-2 View (samples, width) of values");
    constexpr bool labels =
        TargetView::rank() != 1 || ktnn::detail::is_label_type<typename TargetView::value_type>;
    static_assert(labels,
                  "ktnn::data::make_dataset: rank-1 targets are class labels and must be of an "
                  "integer type");
    constexpr bool space =
        std::is_same_v<typename InputView::memory_space, typename TargetView::memory_space>;
    static_assert(space,
                  "ktnn::data::make_dataset: the inputs and the targets must live in the same "
                  "memory space");
    constexpr bool layouts = ktnn::detail::is_wrappable_layout<typename InputView::array_layout> &&
                             ktnn::detail::is_wrappable_layout<typename TargetView::array_layout>;
    static_assert(layouts,
                  "ktnn::data::make_dataset: only LayoutRight, LayoutLeft and LayoutStride Views "
                  "can be used without a copy");
    if constexpr (rank_x && rank_y && labels && space && layouts) {
      using targets = ktnn::detail::dataset_target_view<TargetView>;
      using dataset = Dataset<typename InputView::value_type, Features, targets,
                              typename InputView::array_layout>;
      if (x.extent(1) != std::size_t(Features))
        ktnn::detail::fail("ktnn::data::make_dataset", "the input View '", x.label(), "' has ",
                           x.extent(1), " features per sample, expected ", Features);
      if (y.extent(0) != x.extent(0))
        ktnn::detail::fail("ktnn::data::make_dataset", "the input View '", x.label(), "' has ",
                           x.extent(0), " samples but the target View '", y.label(), "' has ",
                           y.extent(0));
      return dataset(typename dataset::input_tensor(x), targets(y));
    }
  }
}

/// As make_dataset(x, y), checking that `ExecutionSpace` can read both Views.
template <int Features, class ExecutionSpace, class InputView, class TargetView>
  requires Kokkos::is_execution_space_v<ExecutionSpace>
auto make_dataset(ExecutionSpace const&, InputView const& x, TargetView const& y) {
  if constexpr (Kokkos::is_view_v<InputView> && Kokkos::is_view_v<TargetView>) {
    static_assert(
        Kokkos::SpaceAccessibility<ExecutionSpace, typename InputView::memory_space>::accessible,
        "ktnn::data::make_dataset: the execution space cannot read the input View's memory space "
        "(copy it there first, e.g. with Kokkos::create_mirror_view_and_copy)");
    static_assert(
        Kokkos::SpaceAccessibility<ExecutionSpace, typename TargetView::memory_space>::accessible,
        "ktnn::data::make_dataset: the execution space cannot read the target View's memory space "
        "(copy it there first, e.g. with Kokkos::create_mirror_view_and_copy)");
  }
  return make_dataset<Features>(x, y);
}

/// The TargetWidth of a FunctionDataset whose targets are class indices: the
/// functor then writes one int label instead of TargetWidth values.
inline constexpr int class_labels = 0;

/// Samples made on demand by a device functor `f`, so a simulation trains a
/// model straight from its own fields. Inside the loader's gather kernel, for
/// each sample of a batch (i in [0, size()), in the epoch's order), it calls
///
///     f(std::size_t i, T* x, T* y)        TargetWidth > 0
///     f(std::size_t i, T* x, int& label)  TargetWidth == class_labels
///
/// which writes x[0, Features) and y[0, TargetWidth) (or the label); x and y
/// point into the loader's LayoutRight batch buffers. `f` runs on the device:
/// write it as a KOKKOS_LAMBDA or a functor with a const KOKKOS_FUNCTION
/// call operator, capture Views by value, and neither throw nor use std
/// containers in it. It must write every value of its sample each call (the
/// buffers hold the previous batch).
///
/// \tparam MemorySpace where the loader keeps its batch buffers; the loader's
///                     execution space must be able to access it
template <class T, int Features, int TargetWidth, class Functor,
          class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
class FunctionDataset {
 public:
  static_assert(!std::is_const_v<T>, "ktnn::data::FunctionDataset: T must not be const");
  static_assert(Features > 0, "ktnn::data::FunctionDataset: Features must be positive");
  static_assert(TargetWidth >= 0,
                "ktnn::data::FunctionDataset: TargetWidth is the number of target values per "
                "sample, or class_labels (0) for an int class label");
  static_assert(TargetWidth != class_labels ||
                    std::is_invocable_v<Functor const&, std::size_t, T*, int&>,
                "ktnn::data::FunctionDataset: with class_labels targets the functor must be "
                "callable as f(std::size_t i, T* x, int& label) const");
  static_assert(TargetWidth == class_labels ||
                    std::is_invocable_v<Functor const&, std::size_t, T*, T*>,
                "ktnn::data::FunctionDataset: the functor must be callable as "
                "f(std::size_t i, T* x, T* y) const");
  static_assert(Kokkos::is_memory_space_v<MemorySpace>,
                "ktnn::data::FunctionDataset: MemorySpace must be a Kokkos memory space");

  using value_type = T;
  using memory_space = MemorySpace;
  using functor_type = Functor;
  using target_value_type = T;
  static constexpr int features = Features;
  static constexpr bool has_class_labels = TargetWidth == class_labels;

  /// `n` samples made by `f`.
  FunctionDataset(std::size_t n, Functor f) : size_(n), functor_(std::move(f)) {}

  std::size_t size() const { return size_; }
  /// Values per target; 0 for class labels.
  std::size_t target_width() const { return std::size_t(TargetWidth); }
  Functor const& functor() const { return functor_; }

 private:
  std::size_t size_ = 0;
  Functor functor_;
};

/// A FunctionDataset of `n` samples made by `f` (see FunctionDataset for how
/// `f` is called); TargetWidth is the values per target, or class_labels.
/// \tparam MemorySpace where the loader's batch buffers live
template <class T, int Features, int TargetWidth,
          class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space, class Functor>
FunctionDataset<T, Features, TargetWidth, Functor, MemorySpace> make_function_dataset(std::size_t n,
                                                                                      Functor f) {
  return {n, std::move(f)};
}

}  // namespace ktnn::data

namespace ktnn::detail {
/// Whether DataLoader can batch a type.
template <class>
inline constexpr bool is_data_source = false;
template <class T, int Features, class TargetView, class InputLayout>
inline constexpr bool is_data_source<data::Dataset<T, Features, TargetView, InputLayout>> = true;
template <class T, int Features, int TargetWidth, class Functor, class MemorySpace>
inline constexpr bool
    is_data_source<data::FunctionDataset<T, Features, TargetWidth, Functor, MemorySpace>> = true;

/// Inputs or target values of rows order(begin + r) of a View dataset into
/// the batch buffer: one work item per element, features fastest, so a
/// batch's writes are coalesced whatever the source layout (its reads are
/// scattered by the shuffle anyway).
template <class Destination, class Source, class Order>
struct GatherRows {
  Destination dst;
  Source src;
  Order order;
  std::size_t begin;
  KOKKOS_FUNCTION void operator()(std::size_t r, std::size_t j) const {
    dst(r, j) = typename Destination::non_const_value_type(src(order(begin + r), j));
  }
};

/// The class labels of those rows, as int.
template <class Destination, class Source, class Order>
struct GatherLabels {
  Destination dst;
  Source src;
  Order order;
  std::size_t begin;
  KOKKOS_FUNCTION void operator()(std::int64_t r) const {
    dst(r) = int(src(order(begin + std::size_t(r))));
  }
};

/// Rows order(begin + r) of a FunctionDataset: one work item per sample,
/// which calls the user's functor on its rows of the (LayoutRight, so contiguous) buffers.
template <class Functor, class Order, class InputBatch, class TargetBatch>
struct GatherSamples {
  Functor f;
  Order order;
  std::size_t begin;
  InputBatch dst_x;
  TargetBatch dst_y;
  KOKKOS_FUNCTION void operator()(std::int64_t r) const {
    std::size_t const row = std::size_t(r);
    if constexpr (TargetBatch::rank() == 1)
      f(order(begin + row), &dst_x(row, 0), dst_y(row));
    else
      f(order(begin + row), &dst_x(row, 0), &dst_y(row, 0));
  }
};

/// A function dataset's functor seen from sample `begin` on: sample i is the
/// functor's sample begin + i.
template <class Functor>
struct OffsetFunctor {
  Functor f;
  std::size_t begin;
  template <class... Rest>
  KOKKOS_FUNCTION void operator()(std::size_t i, Rest&&... rest) const {
    f(begin + i, static_cast<Rest&&>(rest)...);
  }
};

/// Samples [begin, begin + n) of a function dataset, as a function dataset
/// of n samples (a rank's share of a distributed evaluate).
template <class T, int Features, int TargetWidth, class Functor, class MemorySpace>
data::FunctionDataset<T, Features, TargetWidth, OffsetFunctor<Functor>, MemorySpace>
offset_function_dataset(
    data::FunctionDataset<T, Features, TargetWidth, Functor, MemorySpace> const& data,
    std::size_t begin, std::size_t n) {
  return {n, OffsetFunctor<Functor>{data.functor(), begin}};
}
}  // namespace ktnn::detail

namespace ktnn::data {

/// Where Debian's dataset-fashion-mnist installs the files; KTNN_DATA_DIR
/// overrides it.
inline std::string fashion_mnist_directory() {
  if (char const* dir = std::getenv("KTNN_DATA_DIR"); dir && *dir) return dir;
  return "/usr/share/datasets/fashion-mnist";
}

/// Loads an MNIST-format split ("train" or "t10k") from `directory`: images
/// scaled to [0, 1], labels checked to lie in [0, 10).
template <class T = float, class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
ClassificationDataset<T, 784, MemorySpace> load_mnist_format(std::string const& directory,
                                                             std::string const& split) {
  std::string const images_path = directory + "/" + split + "-images-idx3-ubyte.gz";
  std::string const labels_path = directory + "/" + split + "-labels-idx1-ubyte.gz";
  auto images = read_idx(images_path, 3);
  auto labels = read_idx(labels_path, 1);
  if (images.dims[1] != 28 || images.dims[2] != 28)
    detail::fail("ktnn::data::load_mnist_format", "'", images_path, "' holds ", images.dims[1], "x",
                 images.dims[2], " images, expected 28x28");
  if (images.dims[0] != labels.dims[0])
    detail::fail("ktnn::data::load_mnist_format", "'", images_path, "' holds ", images.dims[0],
                 " images but '", labels_path, "' holds ", labels.dims[0], " labels");
  std::size_t const n = images.dims[0];
  Kokkos::View<T* [784], Kokkos::LayoutRight, Kokkos::HostSpace> x(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::data::images"), n);
  Kokkos::View<int*, Kokkos::HostSpace> y(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::data::labels"), n);
  for (std::size_t i = 0; i < n; ++i) {
    if (labels.bytes[i] >= 10)
      detail::fail("ktnn::data::load_mnist_format", "'", labels_path, "' has label ",
                   int(labels.bytes[i]), " at index ", i, ", outside [0, 10)");
    y(i) = labels.bytes[i];
    for (int j = 0; j < 784; ++j) x(i, j) = T(images.bytes[i * 784 + j]) / T(255);
  }
  auto x_device = Kokkos::create_mirror_view_and_copy(MemorySpace{}, x);
  auto y_device = Kokkos::create_mirror_view_and_copy(MemorySpace{}, y);
  return {typename ClassificationDataset<T, 784, MemorySpace>::input_tensor(x_device), y_device};
}

/// Fashion-MNIST: split "train" (60,000 images) or "test" (10,000).
template <class T = float, class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
ClassificationDataset<T, 784, MemorySpace> load_fashion_mnist(
    std::string const& split, std::string const& directory = fashion_mnist_directory()) {
  if (split != "train" && split != "test")
    detail::fail("ktnn::data::load_fashion_mnist", "split must be \"train\" or \"test\", not \"",
                 split, "\"");
  return load_mnist_format<T, MemorySpace>(directory, split == "train" ? "train" : "t10k");
}

/// The rows [first, second) of a batch of `n` samples that part `part` of
/// `parts` takes: contiguous runs in part order whose sizes differ by at most
/// one (the first n % parts runs are one longer), so the parts together are
/// the batch, row for row. Data-parallel training (ktnn/parallel/mpi.hpp)
/// gives part r of every batch to rank r.
inline std::pair<std::size_t, std::size_t> shard_range(std::size_t n, int part, int parts) {
  if (parts <= 0 || part < 0 || part >= parts)
    detail::fail("ktnn::data::shard_range", "part ", part, " of ", parts,
                 ": parts must be positive and part in [0, parts)");
  std::size_t const base = n / std::size_t(parts), extra = n % std::size_t(parts);
  std::size_t const p = std::size_t(part);
  std::size_t const begin = p * base + std::min(p, extra);
  return {begin, begin + base + (p < extra ? 1 : 0)};
}

struct LoaderOptions {
  int batch_size = 128;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;  ///< drop a final partial batch instead of using it
};

/// Batches of a Dataset or FunctionDataset, gathered on the device into
/// LayoutRight buffers allocated once, whatever the dataset's layout.
///
/// reset() re-points the loader at another dataset of the same type, e.g. the
/// same fields after a simulation has grown them: the batch buffers are kept,
/// and the sample order buffer is reallocated only when the new dataset
/// outgrows it, then to at least twice its size, so a dataset that grows a
/// little every round costs O(log n) allocations over the run, not one a round.
template <class DatasetType, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class DataLoader {
  static_assert(detail::is_data_source<DatasetType>,
                "ktnn::data::DataLoader: DatasetType must be a ktnn::data::Dataset (e.g. from "
                "make_dataset) or a ktnn::data::FunctionDataset");

 public:
  using dataset_type = DatasetType;
  using execution_space = ExecutionSpace;
  using value_type = typename DatasetType::value_type;
  using T = value_type;
  using memory_space = typename DatasetType::memory_space;
  static constexpr int features = DatasetType::features;
  using input_batch = Tensor<T, features, Kokkos::LayoutRight, memory_space>;
  /// The targets of a batch: int class labels, or (samples, width) values in
  /// LayoutRight, whatever the dataset's layout.
  using batch_target_view = std::conditional_t<
      DatasetType::has_class_labels, Kokkos::View<int*, memory_space>,
      Kokkos::View<typename DatasetType::target_value_type**, Kokkos::LayoutRight, memory_space>>;
  /// The name batch_target_view had before datasets could hold Views of other
  /// layouts.
  using target_view = batch_target_view;

  static_assert(Kokkos::SpaceAccessibility<ExecutionSpace, memory_space>::accessible,
                "ktnn::data::DataLoader: the execution space cannot access the dataset's memory "
                "space");

  DataLoader(DatasetType const& data, LoaderOptions options, ExecutionSpace const& exec = {})
      : data_(data), options_(options), exec_(exec) {
    if (options.batch_size <= 0)
      detail::fail("ktnn::data::DataLoader", "batch size must be positive, got ",
                   options.batch_size);
    reserve_batch(data);
    reserve_order(data.size());
    start_epoch(0);
  }

  int batch_size() const { return options_.batch_size; }
  /// The options it was made with (a checkpoint records the seed).
  LoaderOptions const& options() const { return options_; }
  std::size_t samples() const {
    return options_.drop_last ? std::size_t(batches()) * options_.batch_size : data_->size();
  }
  int batches() const {
    std::size_t const n = data_->size(), b = std::size_t(options_.batch_size);
    return int(options_.drop_last ? n / b : (n + b - 1) / b);
  }
  /// The dataset batches come from.
  DatasetType const& dataset() const { return *data_; }
  /// The most samples a dataset given to reset() may have without the loader
  /// allocating.
  std::size_t capacity() const { return order_.extent(0); }

  /// Re-points the loader at `data` (any size; a width of targets equal to the
  /// current dataset's) and starts epoch 0, as the constructor does. Allocates
  /// only when data.size() > capacity(). A FunctionDataset's functor must be
  /// of the same type: a named functor, or a lambda from the same expression.
  void reset(DatasetType const& data) {
    Kokkos::Profiling::ScopedRegion region("ktnn::DataLoader::reset");
    if constexpr (!DatasetType::has_class_labels)
      if (data.target_width() != targets_.extent(1))
        detail::fail("ktnn::data::DataLoader::reset", "the dataset has ", data.target_width(),
                     " values per target, the loader's batches ", targets_.extent(1));
    reserve_batch(data);
    reserve_order(data.size());
    data_.emplace(data);  // emplace, not assignment: lambdas cannot be assigned
    start_epoch(0);
  }

  /// Draws the order of `epoch` (the identity without shuffling).
  void start_epoch(int epoch) {
    Kokkos::Profiling::ScopedRegion region("ktnn::DataLoader::start_epoch");
    std::size_t const n = data_->size();
    for (std::size_t i = 0; i < n; ++i) order_host_(i) = i;
    if (options_.shuffle)
      for (std::size_t i = n; i > 1; --i) {
        auto const j = random::below(i, options_.seed, 1 + std::uint64_t(epoch), i);
        std::swap(order_host_(i - 1), order_host_(j));
      }
    auto const used = std::make_pair(std::size_t(0), n);
    Kokkos::deep_copy(exec_, Kokkos::subview(order_, used), Kokkos::subview(order_host_, used));
  }

  /// The samples in batch `b` of an epoch: the batch size, or fewer in a
  /// last partial batch.
  std::size_t batch_samples(int b) const {
    if (b < 0 || b >= batches())
      detail::fail("ktnn::data::DataLoader::batch", "batch ", b, " of ", batches());
    std::size_t const begin = std::size_t(b) * std::size_t(options_.batch_size);
    return std::min(std::size_t(options_.batch_size), data_->size() - begin);
  }

  /// Batch `b` of the current epoch: inputs and targets, rows [0, size).
  /// The views stay valid until the next call.
  std::pair<input_batch, batch_target_view> batch(int b) { return batch(b, 0, 1); }

  /// Part `part` of `parts` of batch `b` (its rows shard_range(batch_samples(b),
  /// part, parts), in order), gathered alone: what one rank of a data-parallel
  /// run trains on. A part may be empty (a last batch smaller than `parts`).
  std::pair<input_batch, batch_target_view> batch(int b, int part, int parts) {
    Kokkos::Profiling::ScopedRegion region("ktnn::DataLoader::batch");
    auto const [first, last] = shard_range(batch_samples(b), part, parts);
    std::size_t const begin = std::size_t(b) * std::size_t(options_.batch_size) + first;
    std::size_t const size = last - first;
    gather(begin, size);
    auto const rows = std::make_pair(std::size_t(0), size);
    if constexpr (DatasetType::has_class_labels)
      return {inputs_.samples(0, size), Kokkos::subview(targets_, rows)};
    else
      return {inputs_.samples(0, size), Kokkos::subview(targets_, rows, Kokkos::ALL)};
  }

 private:
  using order_view = Kokkos::View<std::size_t*, memory_space>;
  using order_host_view = decltype(Kokkos::create_mirror_view(
      Kokkos::view_alloc(Kokkos::WithoutInitializing), std::declval<order_view const&>()));

  /// Rows order(begin + r), r < size, of the dataset into rows [0, size) of
  /// the batch buffers, one kernel for each.
  void gather(std::size_t begin, std::size_t size) {
    using Rows = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::int64_t>>;
    using inputs = typename input_batch::view_type;
    using targets = batch_target_view;
    if constexpr (requires { typename DatasetType::functor_type; }) {
      using Functor = typename DatasetType::functor_type;
      Kokkos::parallel_for(
          "ktnn::DataLoader::gather_samples", Rows(exec_, 0, std::int64_t(size)),
          detail::GatherSamples<Functor, order_view, inputs, targets>{.f = data_->functor(),
                                                                      .order = order_,
                                                                      .begin = begin,
                                                                      .dst_x = inputs_.view(),
                                                                      .dst_y = targets_});
    } else {
      using source = typename DatasetType::input_tensor::view_type;
      using labels = typename DatasetType::target_view;
      ops::for_each_element(
          exec_, "ktnn::DataLoader::gather_inputs", size, std::size_t(features),
          detail::GatherRows<inputs, source, order_view>{
              .dst = inputs_.view(), .src = data_->inputs.view(), .order = order_, .begin = begin});
      if constexpr (DatasetType::has_class_labels)
        Kokkos::parallel_for(
            "ktnn::DataLoader::gather_targets", Rows(exec_, 0, std::int64_t(size)),
            detail::GatherLabels<targets, labels, order_view>{
                .dst = targets_, .src = data_->targets, .order = order_, .begin = begin});
      else
        ops::for_each_element(
            exec_, "ktnn::DataLoader::gather_targets", size, data_->targets.extent(1),
            detail::GatherRows<targets, labels, order_view>{
                .dst = targets_, .src = data_->targets, .order = order_, .begin = begin});
    }
  }

  /// Batch buffers of min(batch size, dataset size) rows: a batch size far
  /// beyond the data (one partial batch) costs no more memory than the data.
  /// Grown, never shrunk, when reset() brings more samples.
  void reserve_batch(DatasetType const& data) {
    std::size_t const rows =
        std::max<std::size_t>(1, std::min(std::size_t(options_.batch_size), data.size()));
    if (inputs_.data() != nullptr && inputs_.batch() >= rows) return;
    inputs_ = input_batch("ktnn::DataLoader::inputs", rows);
    if constexpr (DatasetType::has_class_labels)
      targets_ = batch_target_view("ktnn::DataLoader::targets", rows);
    else
      targets_ = batch_target_view("ktnn::DataLoader::targets", rows, data.target_width());
  }
  void reserve_order(std::size_t n) {
    if (n <= order_.extent(0)) return;
    std::size_t const capacity = std::max(n, 2 * order_.extent(0));
    order_ = order_view(
        Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing, "ktnn::DataLoader::order"),
        capacity);
    order_host_ =
        Kokkos::create_mirror_view(Kokkos::view_alloc(Kokkos::WithoutInitializing), order_);
  }

  // optional only so reset() can replace a FunctionDataset, whose lambda has
  // no assignment operator; it always holds a dataset.
  std::optional<DatasetType> data_;
  LoaderOptions options_;
  ExecutionSpace exec_;
  // Sized by capacity(), not by the dataset, so that reset() to a grown
  // dataset rarely allocates; the epoch's order is its first size() entries.
  order_view order_;
  order_host_view order_host_;
  input_batch inputs_;
  batch_target_view targets_;
};

}  // namespace ktnn::data
