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
#include <ktnn/train/policy.hpp>
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

/// fit's checks before training (options, the dataset, the CSV file), then
/// the model reserved for the policy's largest step.
template <class Policy, class Model, class Loader>
void check_fit(Policy& policy, Model& model, Loader const& loader, FitOptions const& options,
               bool writes) {
  policy.guard("ktnn::fit", [&] {
    if (options.epochs < 0)
      fail("ktnn::fit", "option epochs is ", options.epochs, ", must be >= 0");
    if (options.first_epoch < 0 || options.first_epoch > options.epochs)
      fail("ktnn::fit", "option first_epoch is ", options.first_epoch,
           ", must be in [0, epochs] = [0, ", options.epochs, "]");
    if (!(options.report_interval >= 0) || !std::isfinite(options.report_interval))
      fail("ktnn::fit", "option report_interval is ", options.report_interval,
           ", must be a finite number of seconds >= 0");
    if (loader.dataset().size() == 0) fail("ktnn::fit", "the dataset has no samples");
    if (loader.batches() == 0)
      fail("ktnn::fit", "an epoch would have no step: batch size ", loader.batch_size(),
           " with drop_last and ", loader.dataset().size(), " samples");
    if (writes && !options.csv_path.empty()) check_writable(options.csv_path);
    check_dataset("ktnn::fit", model.execution(), loader.dataset(), Model::out_features,
                  options.check_inputs);
    model.reserve(policy.batch_rows(loader));
  });
}

/// The line fit prints at the end of an epoch (formatted apart, so the
/// caller's stream keeps its own flags).
template <class Loss>
std::string epoch_line(EpochMetrics const& m, int epochs) {
  std::ostringstream line;
  if (!std::isfinite(m.loss))
    line << "ktnn::fit: warning: epoch " << m.epoch << " loss is not finite\n";
  line << "epoch " << m.epoch << "/" << epochs << "  loss " << std::fixed << std::setprecision(4)
       << m.loss;
  if (reports_accuracy<Loss>) line << "  train acc " << std::setprecision(4) << m.accuracy;
  line << "  " << std::setprecision(3) << m.seconds << " s  " << std::setprecision(0)
       << m.samples_per_second << " samples/s\n";
  return line.str();
}

/// The epochs of one fit under a policy: the loss slots of an epoch's
/// batches (one device scalar per batch, read at reports and at the end)
/// and what each epoch does with them.
template <class Policy, class Model, class Loss, class Optimizer, class Loader>
class FitEpochs {
 public:
  FitEpochs(Policy& policy, Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader,
            FitOptions const& options, bool writes)
      : policy_(policy),
        model_(model),
        loss_(loss),
        optimizer_(optimizer),
        loader_(loader),
        options_(options),
        writes_(writes),
        out_(writes ? options.out : nullptr),
        interval_(options.report_interval > 0 ? options.report_interval
                                              : (options.interactive ? 0.25 : 10.0)),
        batches_(loader.batches()),
        slots_("ktnn::fit::loss_sums", batches_),
        slots_host_(Kokkos::create_mirror_view(Kokkos::HostSpace{}, slots_)) {}

  /// Trains epoch `epoch` (0-based) and returns its metrics.
  EpochMetrics train(int epoch) {
    std::ostream discard(nullptr);
    Progress progress(out_ ? *out_ : discard, options_.interactive, interval_);
    double const seconds = train_batches(epoch, progress);
    policy_.guard("ktnn::fit", [&] {
      check_labels(epoch);
      check_gradients(epoch);
    });
    auto const sums = policy_.combine(sum_slots(slots_host_, batches_));
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.loss = sums.mean_loss();
    m.accuracy = sums.accuracy();
    m.seconds = seconds;
    m.samples = std::size_t(sums.count);
    m.samples_per_second = seconds > 0 ? sums.count / seconds : 0.0;
    if (out_) {
      progress.clear();
      *out_ << epoch_line<Loss>(m, options_.epochs) << std::flush;
    }
    policy_.guard("ktnn::fit", [&] {
      if (writes_ && !options_.csv_path.empty()) append_csv(options_.csv_path, m);
    });
    policy_.end_epoch(model_);
    return m;
  }

 private:
  using memory_space = typename Model::memory_space;
  using clock = std::chrono::steady_clock;

  /// The epoch's steps, with progress reports; returns the seconds they
  /// took, the slots copied to the host.
  double train_batches(int epoch, Progress& progress) {
    auto const& exec = model_.execution();
    loader_.start_epoch(epoch);
    exec.fence();
    auto const start = clock::now();
    for (int b = 0; b < batches_; ++b) {
      {
        // A region per step (the loader's batch and the training step), so
        // tools can count and time fit's steps.
        Kokkos::Profiling::ScopedRegion step_region("ktnn::fit::step");
        policy_.step(model_, loss_, optimizer_, loader_, b,
                     Kokkos::View<LossSums, memory_space>(slots_.data() + b));
      }
      if (out_ && b + 1 < batches_ && progress.due()) report(epoch, b, progress, start);
    }
    Kokkos::deep_copy(exec, slots_host_, slots_);
    exec.fence();
    return std::chrono::duration<double>(clock::now() - start).count();
  }

  /// A progress report after batch b: this process's batches so far (a
  /// rank's shards, in a distributed run) against the samples the whole run
  /// has trained so far.
  void report(int epoch, int b, Progress& progress, clock::time_point start) {
    auto const& exec = model_.execution();
    Kokkos::deep_copy(exec, slots_host_, slots_);
    exec.fence();
    auto const sums = sum_slots(slots_host_, b + 1);
    double const done =
        double(std::min(std::size_t(b + 1) * std::size_t(loader_.batch_size()), loader_.samples()));
    double const elapsed = std::chrono::duration<double>(clock::now() - start).count();
    progress.report("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs),
                    done, double(loader_.samples()), elapsed, sums.mean_loss(),
                    reports_accuracy<Loss> ? sums.accuracy() : -1.0);
  }

  /// Class labels the loss kernels found out of range, batch by batch.
  void check_labels(int epoch) const {
    for (int b = 0; b < batches_; ++b)
      check_labels_seen("ktnn::fit", slots_host_(b),
                        "epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(b),
                        Model::out_features);
  }

  /// A step of the epoch whose gradients were not finite: an error, or a
  /// warning (FitOptions::on_non_finite).
  void check_gradients(int epoch) {
    if constexpr (requires { optimizer_.non_finite_step(); }) {
      auto const step = optimizer_.non_finite_step();
      if (step < 0) return;
      if (options_.on_non_finite == FitOptions::NonFinite::error)
        fail("ktnn::fit", "epoch ", epoch + 1,
             ": gradients that are not finite at "
             "optimizer step ",
             step,
             " (those elements were not updated; the "
             "parameters are finite)");
      if (writes_) {
        std::ostringstream warning;
        warning << "ktnn::fit: warning: epoch " << epoch + 1
                << ": gradients that are not finite at optimizer step " << step
                << " (those elements were not updated)\n";
        (out_ ? *out_ : std::cerr) << warning.str() << std::flush;
      }
      optimizer_.clear_non_finite();
    }
  }

  Policy& policy_;
  Model& model_;
  Loss const& loss_;
  Optimizer& optimizer_;
  Loader& loader_;
  FitOptions const& options_;
  bool writes_;
  std::ostream* out_;
  double interval_;
  int batches_;
  using slots_view = Kokkos::View<LossSums*, memory_space>;
  slots_view slots_;
  decltype(Kokkos::create_mirror_view(Kokkos::HostSpace{},
                                      std::declval<slots_view const&>())) slots_host_;
};

/// fit_with's loop, once the policy is known to be one.
template <class Policy, class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> run_fit(Policy& policy, Model& model, Loss const& loss,
                                  Optimizer& optimizer, Loader& loader, FitOptions const& options) {
  Kokkos::Profiling::ScopedRegion region("ktnn::fit");
  bool const writes = policy.writes();
  check_fit(policy, model, loader, options, writes);
  RestoreMode<Model> const restore{model, model.mode()};
  model.set_mode(Mode::train);
  FitEpochs<Policy, Model, Loss, Optimizer, Loader> epochs(policy, model, loss, optimizer, loader,
                                                           options, writes);
  std::vector<EpochMetrics> history;
  for (int epoch = options.first_epoch; epoch < options.epochs; ++epoch) {
    history.push_back(epochs.train(epoch));
    for (auto const& callback : options.on_epoch_end) callback(history.back());
  }
  return history;
}
}  // namespace detail

/// fit's loop over epochs [options.first_epoch, options.epochs) and the
/// loader's batches, run under `policy` (train/policy.hpp): fit runs it
/// under LocalTraining, a data-parallel fit (parallel/mpi.hpp) under
/// mpi::DataParallelTraining. The rest is fit's: the checks before training,
/// the loss slots, progress, the per-epoch line, the CSV, the callbacks.
template <class Policy, class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit_with(Policy& policy, Model& model, Loss const& loss,
                                   Optimizer& optimizer, Loader& loader,
                                   FitOptions const& options = {}) {
  if constexpr (check_training_policy<Policy, Model, Loss, Optimizer, Loader>())
    return detail::run_fit(policy, model, loss, optimizer, loader, options);
  else
    return {};
}

/// The loss sums of `model` over samples [begin, end) of `data`, in batches
/// of `batch_size`, in evaluation mode (the model's mode is restored after):
/// evaluate's work, and one rank's share of a distributed evaluate. A
/// dataset of Views is read in place; a function dataset goes through a
/// loader.
template <class Model, class Loss, class Dataset>
LossSums evaluate_rows(Model& model, Loss const& loss, Dataset const& data, std::size_t begin,
                       std::size_t end, int batch_size) {
  using memory_space = typename Model::memory_space;
  if (batch_size <= 0)
    detail::fail("ktnn::evaluate", "batch size must be positive, got ", batch_size);
  std::size_t const n = end - begin;
  int const batches = int((n + std::size_t(batch_size) - 1) / std::size_t(batch_size));
  Kokkos::View<LossSums*, memory_space> slots("ktnn::evaluate::loss_sums", batches);
  detail::RestoreMode<Model> const restore{model, model.mode()};
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
    auto const part = detail::offset_function_dataset(data, begin, n);
    data::DataLoader<std::remove_cvref_t<decltype(part)>, typename Model::execution_space> loader(
        part, {.batch_size = batch_size, .shuffle = false}, model.execution());
    for (int b = 0; b < batches; ++b) {
      auto [x, y] = loader.batch(b);
      compute_loss(model.execution(), loss, model.forward(x), y, slot(b));
    }
  }
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, slots);
  for (int b = 0; b < batches; ++b)
    detail::check_labels_seen("ktnn::evaluate", host(b), "batch " + std::to_string(b),
                              Model::out_features);
  return detail::sum_slots(host, batches);
}

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
  LocalTraining policy;
  return fit_with(policy, model, loss, optimizer, loader, options);
}

/// The loss and accuracy of `model` over a whole dataset, in batches, in
/// evaluation mode (the model's mode is restored after). A dataset of Views
/// is read in place, batch by batch; a function dataset goes through a loader.
template <class Model, class Loss, class Dataset>
LossSums evaluate(Model& model, Loss const& loss, Dataset const& data, int batch_size = 1024) {
  Kokkos::Profiling::ScopedRegion region("ktnn::evaluate");
  return evaluate_rows(model, loss, data, 0, data.size(), batch_size);
}

}  // namespace ktnn
