#pragma once
/// \file ktnn::fit and ktnn::evaluate: the training loop and its metrics.
///
/// Each batch is gathered by the loader and trained by train_step with its
/// loss sums in a device slot of its own; the host reads the slots only for
/// progress reports and at the end of an epoch. fit prints nothing unless
/// given a stream (FitOptions::out), and leaves that stream's formatting as
/// it found it.

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/data/dataset.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/train/progress.hpp>
#include <ktnn/train/step.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
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
  /// The epoch count at the end: fit trains epochs [first_epoch, epochs).
  int epochs = 1;
  /// The epochs already trained (0-based index of the first one to train):
  /// a run resumed from a checkpoint starts at the checkpoint's epoch count
  /// (TrainingProgress::epochs, see io/checkpoint.hpp). Epochs keep their
  /// global numbers: the loader's order of epoch e, EpochMetrics::epoch and
  /// the lines printed are those of the uninterrupted run, so that run and
  /// [0, k) + checkpoint + [k, n) give the same parameters, bit for bit.
  int first_epoch = 0;
  /// Progress and per-epoch lines go here (e.g. &std::cout); none by default.
  std::ostream* out = nullptr;
  /// Rewrite one progress line (true on a terminal by default) or print plain lines.
  bool interactive = stdout_is_terminal();
  /// Seconds between progress reports; 0: 0.25 s on a terminal, 10 s otherwise.
  double report_interval = 0;
  /// Appends one line per epoch (with a header when the file is new).
  std::string csv_path;
  /// Called after every epoch, in order.
  std::vector<std::function<void(EpochMetrics const&)>> on_epoch_end;
  /// Before training, scan a dataset of Views for inputs (and regression
  /// targets) that are not finite (one pass over the data); one NaN would
  /// otherwise spread into the weights. Class labels are always checked.
  bool check_inputs = true;
  /// What a gradient that is not finite does at the end of its epoch: stop
  /// with a ktnn::Error naming the epoch and the step (the default), or print
  /// a warning to `out` (std::cerr without one) and go on. Either way the
  /// optimizer left those elements unchanged, so the parameters stay finite.
  enum class NonFinite { error, warn } on_non_finite = NonFinite::error;
};

namespace detail {
inline LossSums sum_slots(Kokkos::View<LossSums*, Kokkos::HostSpace> const& host, int count) {
  LossSums total;
  for (int i = 0; i < count; ++i) total += host(i);
  return total;
}

/// Whether a loss's LossSums::correct means something (classification).
template <class Loss>
inline constexpr bool reports_accuracy = [] {
  if constexpr (requires { Loss::reports_accuracy; })
    return bool(Loss::reports_accuracy);
  else
    return false;
}();

/// Throws unless `path` can be opened for appending (before training, not
/// after the first epoch).
inline void check_writable(std::string const& path) {
  errno = 0;
  std::ofstream csv(path, std::ios::app);
  if (!csv)
    fail("ktnn::fit", "cannot open metrics file '", path,
         "': ", errno != 0 ? std::strerror(errno) : "unknown error");
}

inline void append_csv(std::string const& path, EpochMetrics const& m) {
  bool const fresh = !std::filesystem::exists(path) || std::filesystem::file_size(path) == 0;
  std::ofstream csv(path, std::ios::app);
  if (!csv) fail("ktnn::fit", "cannot open metrics file '", path, "'");
  if (fresh) csv << "epoch,loss,accuracy,seconds,samples_per_second,samples\n";
  csv << m.epoch << ',' << std::setprecision(9) << m.loss << ',' << m.accuracy << ',' << m.seconds
      << ',' << m.samples_per_second << ',' << m.samples << '\n';
  if (!csv) fail("ktnn::fit", "cannot write metrics file '", path, "'");
}
/// The first row i of `values` (rows x width) with a value that is not
/// finite, as a Kokkos::Min reduction.
template <class Values>
struct FirstNonFiniteRow {
  Values values;
  int width;
  KOKKOS_FUNCTION void operator()(std::int64_t i, std::int64_t& m) const {
    for (int j = 0; j < width; ++j)
      if (!Kokkos::isfinite(double(values(i, j)))) {
        m = i < m ? i : m;
        break;
      }
  }
};

/// The first sample whose class label is outside [0, classes), as a
/// Kokkos::Min reduction.
template <class Labels>
struct FirstLabelOutside {
  Labels labels;
  int classes;
  KOKKOS_FUNCTION void operator()(std::int64_t i, std::int64_t& m) const {
    if (!(labels(i) >= 0 && labels(i) < classes)) m = i < m ? i : m;
  }
};

/// The first row of `values` (a dataset's inputs or targets) that is not all
/// finite; `values.extent(0)` when there is none.
template <class ExecSpace, class Values>
std::int64_t first_non_finite_row(char const* label, ExecSpace const& exec, Values const& values,
                                  int width) {
  std::int64_t const n = std::int64_t(values.extent(0));
  std::int64_t first = n;
  Kokkos::parallel_reduce(
      label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, n),
      FirstNonFiniteRow<Values>{.values = values, .width = width},
      Kokkos::Min<std::int64_t>(first));
  return first;
}

/// One device pass over a dataset of Views: the first sample whose inputs are
/// not all finite (when `inputs`) and the first class label outside
/// [0, classes) each become a ktnn::Error naming the sample, the feature or
/// label and the value. Function datasets are checked as they are gathered
/// (labels by the loss kernel).
template <class ExecSpace, class Dataset>
void check_dataset(char const* operation, ExecSpace const& exec, Dataset const& data, int classes,
                   bool inputs) {
  if constexpr (requires { data.inputs.view(); }) {
    auto const x = data.inputs.view();
    std::int64_t const n = std::int64_t(data.size());
    constexpr int features = Dataset::features;
    if (inputs) {
      std::int64_t const first = first_non_finite_row("ktnn::fit::check_inputs", exec, x, features);
      if (first < n) {
        auto const row = Kokkos::create_mirror_view_and_copy(
            Kokkos::HostSpace{}, Kokkos::subview(x, first, Kokkos::ALL));
        int j = 0;
        while (j + 1 < features && std::isfinite(double(row(j)))) ++j;
        fail(operation, "input sample ", first, " has ", double(row(j)), " at feature ", j,
             " (not finite); clean the data, or set FitOptions::check_inputs = false");
      }
    }
    if constexpr (!Dataset::has_class_labels) {
      if (inputs) {
        auto const y = data.targets;
        std::int64_t const first =
            first_non_finite_row("ktnn::fit::check_targets", exec, y, int(y.extent(1)));
        if (first < n)
          fail(operation, "target of sample ", first,
               " is not finite; clean the data, or set FitOptions::check_inputs = false");
      }
    } else {
      auto const y = data.targets;
      std::int64_t first = n;
      Kokkos::parallel_reduce(
          "ktnn::fit::check_labels",
          Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, n),
          FirstLabelOutside<typename Dataset::target_view>{.labels = y, .classes = classes},
          Kokkos::Min<std::int64_t>(first));
      if (first < n) {
        typename Dataset::target_view::non_const_value_type label{};
        Kokkos::deep_copy(exec, label, Kokkos::subview(y, first));
        exec.fence("ktnn::fit::check_labels");
        fail(operation, "class label ", static_cast<long long>(label), " of sample ", first,
             " is outside [0, ", classes, ") for a model with ", classes, " outputs");
      }
    }
  }
}
/// Puts a model's mode back as it was when this goes out of scope (an
/// exception included).
template <class Model>
struct RestoreMode {
  Model& model;
  Mode mode;
  ~RestoreMode() { model.set_mode(mode); }
};
/// How fit runs: its steps, where errors are agreed on, who prints. fit uses
/// LocalTraining; ktnn/parallel/mpi.hpp supplies the data-parallel one, so
/// both run the one loop below. A policy has
///   guard(operation, f)     runs f; a distributed policy makes every rank
///                           throw when one did (no rank left waiting)
///   writes()                whether this process prints and writes the CSV
///   batch_rows(loader)      the most rows one of its steps takes
///   step(model, loss, optimizer, loader, b, sums)
///   combine(sums)           the epoch's loss sums over every process
///   end_epoch(model)        after the sums, before the callbacks
struct LocalTraining {
  template <class F>
  decltype(auto) guard(char const*, F&& f) {
    return std::forward<F>(f)();
  }
  bool writes() const { return true; }
  template <class Loader>
  int batch_rows(Loader const& loader) const {
    return loader.batch_size();
  }
  template <class Model, class Loss, class Optimizer, class Loader>
  void step(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader, int b,
            Kokkos::View<LossSums, typename Model::memory_space> const& sums) {
    auto [x, y] = loader.batch(b);
    train_step(model, loss, optimizer, x, y, sums);
  }
  LossSums combine(LossSums const& sums) const { return sums; }
  template <class Model>
  void end_epoch(Model&) {}
};

/// fit's loop over epochs and batches under a policy (see LocalTraining).
template <class Policy, class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit_with(Policy& run, Model& model, Loss const& loss,
                                   Optimizer& optimizer, Loader& loader,
                                   FitOptions const& options) {
  using memory_space = typename Model::memory_space;
  using clock = std::chrono::steady_clock;
  Kokkos::Profiling::ScopedRegion region("ktnn::fit");
  auto const& exec = model.execution();
  int const batches = loader.batches();
  bool const writes = run.writes();
  run.guard("ktnn::fit", [&] {
    if (options.epochs < 0)
      fail("ktnn::fit", "option epochs is ", options.epochs, ", must be >= 0");
    if (options.first_epoch < 0 || options.first_epoch > options.epochs)
      fail("ktnn::fit", "option first_epoch is ", options.first_epoch,
           ", must be in [0, epochs] = [0, ", options.epochs, "]");
    if (!(options.report_interval >= 0) || !std::isfinite(options.report_interval))
      fail("ktnn::fit", "option report_interval is ", options.report_interval,
           ", must be a finite number of seconds >= 0");
    if (loader.dataset().size() == 0) fail("ktnn::fit", "the dataset has no samples");
    if (batches == 0)
      fail("ktnn::fit", "an epoch would have no step: batch size ", loader.batch_size(),
           " with drop_last and ", loader.dataset().size(), " samples");
    if (writes && !options.csv_path.empty()) check_writable(options.csv_path);
    check_dataset("ktnn::fit", exec, loader.dataset(), Model::out_features, options.check_inputs);
    model.reserve(run.batch_rows(loader));
  });
  RestoreMode<Model> const restore{model, model.mode()};
  model.set_mode(Mode::train);
  Kokkos::View<LossSums*, memory_space> slots("ktnn::fit::loss_sums", batches);
  auto slots_host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, slots);
  double const interval =
      options.report_interval > 0 ? options.report_interval : (options.interactive ? 0.25 : 10.0);
  std::ostream* out = writes ? options.out : nullptr;
  std::vector<EpochMetrics> history;

  for (int epoch = options.first_epoch; epoch < options.epochs; ++epoch) {
    std::ostream discard(nullptr);
    Progress progress(out ? *out : discard, options.interactive, interval);
    loader.start_epoch(epoch);
    exec.fence();
    auto const start = clock::now();
    for (int b = 0; b < batches; ++b) {
      run.step(model, loss, optimizer, loader, b,
               Kokkos::View<LossSums, memory_space>(slots.data() + b));
      if (out && b + 1 < batches && progress.due()) {
        // This process's batches so far (a rank's shards, in a distributed
        // run) against the samples the whole run has trained so far.
        Kokkos::deep_copy(exec, slots_host, slots);
        exec.fence();
        auto const sums = sum_slots(slots_host, b + 1);
        double const done = double(
            std::min(std::size_t(b + 1) * std::size_t(loader.batch_size()), loader.samples()));
        double const elapsed = std::chrono::duration<double>(clock::now() - start).count();
        progress.report("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                        done, double(loader.samples()), elapsed, sums.mean_loss(),
                        reports_accuracy<Loss> ? sums.accuracy() : -1.0);
      }
    }
    Kokkos::deep_copy(exec, slots_host, slots);
    exec.fence();
    auto const seconds = std::chrono::duration<double>(clock::now() - start).count();
    run.guard("ktnn::fit", [&] {
      for (int b = 0; b < batches; ++b)
        check_labels_seen("ktnn::fit", slots_host(b),
                          "epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(b),
                          Model::out_features);
      if constexpr (requires { optimizer.non_finite_step(); }) {
        if (auto const step = optimizer.non_finite_step(); step >= 0) {
          if (options.on_non_finite == FitOptions::NonFinite::error)
            fail("ktnn::fit", "epoch ", epoch + 1,
                 ": gradients that are not finite at "
                 "optimizer step ",
                 step,
                 " (those elements were not updated; the "
                 "parameters are finite)");
          if (writes) {
            std::ostringstream warning;
            warning << "ktnn::fit: warning: epoch " << epoch + 1
                    << ": gradients that are not finite at optimizer step " << step
                    << " (those elements were not updated)\n";
            (out ? *out : std::cerr) << warning.str() << std::flush;
          }
          optimizer.clear_non_finite();
        }
      }
    });
    auto const sums = run.combine(sum_slots(slots_host, batches));
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.loss = sums.mean_loss();
    m.accuracy = sums.accuracy();
    m.seconds = seconds;
    m.samples = std::size_t(sums.count);
    m.samples_per_second = seconds > 0 ? sums.count / seconds : 0.0;
    if (out) {
      progress.clear();
      // Formatted apart, so the caller's stream keeps its own flags.
      std::ostringstream line;
      if (!std::isfinite(m.loss))
        line << "ktnn::fit: warning: epoch " << m.epoch << " loss is not finite\n";
      line << "epoch " << m.epoch << "/" << options.epochs << "  loss " << std::fixed
           << std::setprecision(4) << m.loss;
      if (reports_accuracy<Loss>) line << "  train acc " << std::setprecision(4) << m.accuracy;
      line << "  " << std::setprecision(3) << m.seconds << " s  " << std::setprecision(0)
           << m.samples_per_second << " samples/s\n";
      *out << line.str() << std::flush;
    }
    run.guard("ktnn::fit", [&] {
      if (writes && !options.csv_path.empty()) append_csv(options.csv_path, m);
    });
    run.end_epoch(model);
    history.push_back(m);
    for (auto const& callback : options.on_epoch_end) callback(m);
  }
  return history;
}

/// The loss sums of `model` over samples [begin, end) of `data`, in batches
/// of `batch_size`, in evaluation mode (restored after): evaluate's work, and
/// one rank's share of a distributed evaluate. A dataset of Views is read in
/// place; a function dataset goes through a loader.
template <class Model, class Loss, class Dataset>
LossSums evaluate_rows(Model& model, Loss const& loss, Dataset const& data, std::size_t begin,
                       std::size_t end, int batch_size) {
  using memory_space = typename Model::memory_space;
  if (batch_size <= 0) fail("ktnn::evaluate", "batch size must be positive, got ", batch_size);
  std::size_t const n = end - begin;
  int const batches = int((n + std::size_t(batch_size) - 1) / std::size_t(batch_size));
  Kokkos::View<LossSums*, memory_space> slots("ktnn::evaluate::loss_sums", batches);
  RestoreMode<Model> const restore{model, model.mode()};
  model.set_mode(Mode::evaluate);
  auto slot = [&](int b) { return Kokkos::View<LossSums, memory_space>(slots.data() + b); };
  if constexpr (requires { data.inputs.samples(0, 0); }) {
    for (int b = 0; b < batches; ++b) {
      std::size_t const first = begin + std::size_t(b) * batch_size;
      std::size_t const last = std::min(end, first + std::size_t(batch_size));
      auto const rows = std::make_pair(first, last);
      auto const x = data.inputs.samples(first, last);
      if constexpr (Dataset::target_view::rank() == 1)
        compute_loss(model.execution(), loss, model.forward(x), Kokkos::subview(data.targets, rows),
                     slot(b));
      else
        compute_loss(model.execution(), loss, model.forward(x),
                     Kokkos::subview(data.targets, rows, Kokkos::ALL), slot(b));
    }
  } else {
    // Samples [begin, end) of a function dataset: its functor called at an
    // offset, batched without shuffling.
    auto const part = offset_function_dataset(data, begin, n);
    data::DataLoader<std::remove_cvref_t<decltype(part)>, typename Model::execution_space> loader(
        part, {.batch_size = batch_size, .shuffle = false}, model.execution());
    for (int b = 0; b < batches; ++b) {
      auto [x, y] = loader.batch(b);
      compute_loss(model.execution(), loss, model.forward(x), y, slot(b));
    }
  }
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, slots);
  for (int b = 0; b < batches; ++b)
    check_labels_seen("ktnn::evaluate", host(b), "batch " + std::to_string(b), Model::out_features);
  return sum_slots(host, batches);
}
}  // namespace detail

/// Trains `model` on `loader` for epochs [options.first_epoch,
/// options.epochs) in training mode (the model's mode before is restored at
/// the end, as evaluate does; an evaluate in a callback returns to training
/// mode); returns the metrics of each epoch it trained.
///
/// Epoch e trains on the loader's order of epoch e (a function of the
/// loader's seed and e alone), and the model's step counter and the
/// optimizer's state carry everything else a step depends on: a run that
/// stops after epoch k and resumes from a checkpoint (io/checkpoint.hpp) with
/// first_epoch = k trains exactly as one that did not stop.
template <class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader,
                              FitOptions const& options = {}) {
  detail::LocalTraining run;
  return detail::fit_with(run, model, loss, optimizer, loader, options);
}

/// The loss and accuracy of `model` over a whole dataset, in batches, in
/// evaluation mode (the model's mode is restored after). A dataset of Views
/// is read in place, batch by batch; a function dataset goes through a loader.
template <class Model, class Loss, class Dataset>
LossSums evaluate(Model& model, Loss const& loss, Dataset const& data, int batch_size = 1024) {
  Kokkos::Profiling::ScopedRegion region("ktnn::evaluate");
  return detail::evaluate_rows(model, loss, data, 0, data.size(), batch_size);
}

}  // namespace ktnn
