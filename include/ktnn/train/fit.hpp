#pragma once
/// \file ktnn::fit and ktnn::evaluate: the training loop and its metrics.
///
/// A step is: gather the batch, forward, the fused loss
/// (value, gradient and metrics into a device slot of this step), backward
/// (writing the gradients over the last step's, so no zeroing pass),
/// the optimizer's one kernel. The host reads the loss only for progress
/// reports and at the end of an epoch.

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/data/dataset.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/train/progress.hpp>

#include <Kokkos_Core.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace ktnn {

struct EpochMetrics {
  int epoch = 0;  ///< 1-based
  double loss = 0;
  double accuracy = 0;  ///< of the training batches, as they were trained
  double seconds = 0;
  double samples_per_second = 0;
  std::size_t samples = 0;
};

struct FitOptions {
  int epochs = 1;
  /// Progress and per-epoch lines go here; nullptr for none.
  std::ostream* out = &std::cout;
  /// Rewrite one progress line (true on a terminal by default) or print plain lines.
  bool interactive = stdout_is_terminal();
  /// Seconds between progress reports; 0: 0.25 s on a terminal, 10 s otherwise.
  double report_interval = 0;
  /// Appends one line per epoch (with a header when the file is new).
  std::string csv_path;
  /// Called after every epoch, in order.
  std::vector<std::function<void(EpochMetrics const&)>> on_epoch_end;
};

namespace detail {
inline LossSums sum_slots(Kokkos::View<LossSums*, Kokkos::HostSpace> const& host, int count) {
  LossSums total;
  for (int i = 0; i < count; ++i) total += host(i);
  return total;
}

inline void append_csv(std::string const& path, EpochMetrics const& m) {
  bool const fresh = !std::filesystem::exists(path);
  std::ofstream csv(path, std::ios::app);
  if (!csv) fail("ktnn::fit", "cannot open metrics file '", path, "'");
  if (fresh) csv << "epoch,loss,accuracy,seconds,samples_per_second,samples\n";
  csv << m.epoch << ',' << std::setprecision(9) << m.loss << ',' << m.accuracy << ',' << m.seconds
      << ',' << m.samples_per_second << ',' << m.samples << '\n';
  if (!csv) fail("ktnn::fit", "cannot write metrics file '", path, "'");
}
}  // namespace detail

/// Trains `model` on `loader` for options.epochs epochs; returns each epoch's
/// metrics.
template <class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader,
                              FitOptions const& options = {}) {
  using memory_space = typename Model::memory_space;
  using clock = std::chrono::steady_clock;
  Kokkos::Profiling::ScopedRegion region("ktnn::fit");
  auto const& exec = model.execution();
  int const batches = loader.batches();
  model.reserve(loader.batch_size());
  Kokkos::View<LossSums*, memory_space> slots("ktnn::fit::loss_sums", batches);
  auto slots_host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, slots);
  double const interval =
      options.report_interval > 0 ? options.report_interval : (options.interactive ? 0.25 : 10.0);
  std::ostream* out = options.out;
  std::vector<EpochMetrics> history;

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    Progress progress(out ? *out : std::cout, options.interactive, interval);
    loader.start_epoch(epoch);
    exec.fence();
    auto const start = clock::now();
    for (int b = 0; b < batches; ++b) {
      auto [x, y] = loader.batch(b);
      auto prediction = model.forward(x);
      loss(exec, detail::Matrix<typename Model::value_type const>(detail::as_matrix(prediction)), y,
           detail::as_matrix(model.output_gradient()),
           Kokkos::View<LossSums, memory_space>(slots.data() + b));
      model.backward(false, Accumulate::no);  // no zero_grad() pass needed
      optimizer.step(model.parameters(), model.gradients());
      if (out && b + 1 < batches && progress.due()) {
        Kokkos::deep_copy(exec, slots_host, slots);
        exec.fence();
        auto const sums = detail::sum_slots(slots_host, b + 1);
        double const elapsed = std::chrono::duration<double>(clock::now() - start).count();
        progress.report("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                        sums.count, double(loader.samples()), elapsed, sums.mean_loss(),
                        sums.accuracy());
      }
    }
    Kokkos::deep_copy(exec, slots_host, slots);
    exec.fence();
    auto const seconds = std::chrono::duration<double>(clock::now() - start).count();
    auto const sums = detail::sum_slots(slots_host, batches);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.loss = sums.mean_loss();
    m.accuracy = sums.accuracy();
    m.seconds = seconds;
    m.samples = std::size_t(sums.count);
    m.samples_per_second = seconds > 0 ? sums.count / seconds : 0.0;
    if (!std::isfinite(m.loss) && out)
      *out << "ktnn::fit: warning: epoch " << m.epoch << " loss is not finite\n";
    if (out) {
      progress.clear();
      *out << "epoch " << m.epoch << "/" << options.epochs << "  loss " << std::fixed
           << std::setprecision(4) << m.loss << "  train acc " << std::setprecision(4) << m.accuracy
           << "  " << std::setprecision(3) << m.seconds << " s  " << std::setprecision(0)
           << m.samples_per_second << " samples/s\n"
           << std::defaultfloat << std::flush;
    }
    if (!options.csv_path.empty()) detail::append_csv(options.csv_path, m);
    history.push_back(m);
    for (auto const& callback : options.on_epoch_end) callback(m);
  }
  return history;
}

/// The loss and accuracy of `model` over a whole dataset, in batches.
template <class Model, class Loss, class Dataset>
LossSums evaluate(Model& model, Loss const& loss, Dataset const& data, int batch_size = 1024) {
  using memory_space = typename Model::memory_space;
  Kokkos::Profiling::ScopedRegion region("ktnn::evaluate");
  data::DataLoader<Dataset, typename Model::execution_space> loader(
      data, {.batch_size = batch_size, .shuffle = false}, model.execution());
  int const batches = loader.batches();
  Kokkos::View<LossSums*, memory_space> slots("ktnn::evaluate::loss_sums", batches);
  for (int b = 0; b < batches; ++b) {
    auto [x, y] = loader.batch(b);
    auto prediction = model.forward(x);
    loss(model.execution(),
         detail::Matrix<typename Model::value_type const>(detail::as_matrix(prediction)), y,
         detail::Matrix<typename Model::value_type>{},
         Kokkos::View<LossSums, memory_space>(slots.data() + b));
  }
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, slots);
  return detail::sum_slots(host, batches);
}

}  // namespace ktnn
