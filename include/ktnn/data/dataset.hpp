#pragma once
/// \file Datasets resident in device memory and a loader that cuts them into
/// (optionally shuffled) batches on the device.
///
/// A dataset is staged to the device once; each epoch, the loader draws a
/// permutation on the host (Fisher-Yates keyed by (seed, epoch), so the order
/// is the same on every backend), copies it over, and gathers each batch with
/// one kernel into buffers allocated once. The last batch may be partial.

#include <ktnn/core/error.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/core/tensor.hpp>
#include <ktnn/data/idx.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace ktnn::data {

/// Inputs (n x Features) and targets (n labels, or n x width values) in
/// MemorySpace.
template <class T, int Features, class TargetView>
struct Dataset {
  using value_type = T;
  using memory_space = typename TargetView::memory_space;
  using input_tensor = Tensor<T, Features, Kokkos::LayoutRight, memory_space>;
  using target_view = TargetView;
  static constexpr int features = Features;

  input_tensor inputs;
  TargetView targets;

  std::size_t size() const { return inputs.batch(); }

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

struct LoaderOptions {
  int batch_size = 128;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;  ///< drop a final partial batch instead of using it
};

/// Batches of a Dataset, gathered on the device.
template <class DatasetType, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class DataLoader {
 public:
  using dataset_type = DatasetType;
  using T = typename DatasetType::value_type;
  using memory_space = typename DatasetType::memory_space;
  using target_view = typename DatasetType::target_view;
  static constexpr int features = DatasetType::features;
  using input_batch = Tensor<T, features, Kokkos::LayoutRight, memory_space>;

  DataLoader(DatasetType const& data, LoaderOptions options, ExecutionSpace const& exec = {})
      : data_(data), options_(options), exec_(exec) {
    if (options.batch_size <= 0)
      detail::fail("ktnn::data::DataLoader", "batch size must be positive, got ",
                   options.batch_size);
    std::size_t const n = data.size();
    order_ = Kokkos::View<int*, memory_space>(
        Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, "ktnn::DataLoader::order"), n);
    order_host_ = Kokkos::create_mirror_view(order_);
    inputs_ = input_batch("ktnn::DataLoader::inputs", std::size_t(options.batch_size));
    if constexpr (target_view::rank() == 1)
      targets_ = target_view("ktnn::DataLoader::targets", options.batch_size);
    else
      targets_ =
          target_view("ktnn::DataLoader::targets", options.batch_size, data.targets.extent(1));
    start_epoch(0);
  }

  int batch_size() const { return options_.batch_size; }
  std::size_t samples() const {
    return options_.drop_last ? std::size_t(batches()) * options_.batch_size : data_.size();
  }
  int batches() const {
    std::size_t const n = data_.size(), b = std::size_t(options_.batch_size);
    return int(options_.drop_last ? n / b : (n + b - 1) / b);
  }

  /// Draws the order of `epoch` (the identity without shuffling).
  void start_epoch(int epoch) {
    std::size_t const n = data_.size();
    for (std::size_t i = 0; i < n; ++i) order_host_(i) = int(i);
    if (options_.shuffle)
      for (std::size_t i = n; i > 1; --i) {
        auto const j = random::below(i, options_.seed, 1 + std::uint64_t(epoch), i);
        std::swap(order_host_(i - 1), order_host_(j));
      }
    Kokkos::deep_copy(exec_, order_, order_host_);
  }

  /// Batch `b` of the current epoch: inputs and targets, rows [0, size).
  /// The views stay valid until the next call.
  std::pair<input_batch, target_view> batch(int b) {
    if (b < 0 || b >= batches())
      detail::fail("ktnn::data::DataLoader::batch", "batch ", b, " of ", batches());
    int const begin = b * options_.batch_size;
    int const size = std::min<int>(options_.batch_size, int(data_.size()) - begin);
    auto order = order_;
    auto src_x = data_.inputs;
    auto dst_x = inputs_;
    Kokkos::parallel_for(
        "ktnn::DataLoader::gather_inputs",
        Kokkos::RangePolicy<ExecutionSpace>(exec_, 0, std::size_t(size) * features),
        KOKKOS_LAMBDA(std::size_t e) {
          std::size_t const r = e / features, j = e - r * features;
          dst_x(r, j) = src_x(order(begin + r), j);
        });
    auto src_y = data_.targets;
    auto dst_y = targets_;
    if constexpr (target_view::rank() == 1) {
      Kokkos::parallel_for(
          "ktnn::DataLoader::gather_targets", Kokkos::RangePolicy<ExecutionSpace>(exec_, 0, size),
          KOKKOS_LAMBDA(int r) { dst_y(r) = src_y(order(begin + r)); });
      return {inputs_.samples(0, size), Kokkos::subview(targets_, std::make_pair(0, size))};
    } else {
      int const width = int(targets_.extent(1));
      Kokkos::parallel_for(
          "ktnn::DataLoader::gather_targets",
          Kokkos::RangePolicy<ExecutionSpace>(exec_, 0, size * width), KOKKOS_LAMBDA(int e) {
            int const r = e / width, j = e - (e / width) * width;
            dst_y(r, j) = src_y(order(begin + r), j);
          });
      return {inputs_.samples(0, size),
              Kokkos::subview(targets_, std::make_pair(0, size), Kokkos::ALL)};
    }
  }

 private:
  DatasetType data_;
  LoaderOptions options_;
  ExecutionSpace exec_;
  Kokkos::View<int*, memory_space> order_;
  decltype(Kokkos::create_mirror_view(
      std::declval<Kokkos::View<int*, memory_space>>())) order_host_;
  input_batch inputs_;
  target_view targets_;
};

}  // namespace ktnn::data
