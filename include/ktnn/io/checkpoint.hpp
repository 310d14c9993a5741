#pragma once
/// \file Training checkpoints: everything a run needs to go on exactly where
/// it stopped, in one safetensors file.
///
///   // after epoch k (e.g. in a FitOptions::on_epoch_end callback):
///   ktnn::save_checkpoint("run.st", model, optimizer, ktnn::training_progress(loader, k));
///   // later, in a new process, with freshly made objects:
///   auto const progress = ktnn::load_checkpoint("run.st", model, optimizer);
///   ktnn::check_loader(progress, loader);
///   options.first_epoch = progress.epochs;
///   ktnn::fit(model, loss, optimizer, loader, options);   // epochs [k, n)
///
/// gives the parameters, bit for bit, of one fit over epochs [0, n): the
/// model's parameters and state, the optimizer's buffers and counters (step
/// counts, the learning rate in force), the model's step counter and seed
/// (dropout masks are a function of them) and the epoch count are all saved.
/// Stateful schedules that are not part of the optimizer (ReduceLROnPlateau)
/// come along as extra arguments after the progress (save) or the optimizer
/// (load), in the same order.
///
/// The file: the model's tensors under their PyTorch names, exactly as
/// ktnn::save writes them (so torch's load_state_dict(strict=False), or
/// ktnn::load, reads the weights of a checkpoint), then the optimizer's
/// per-parameter buffers as "ktnn.optimizer.<parameter>.<buffer>" (e.g.
/// "ktnn.optimizer.0.weight.exp_avg", each of its parameter's shape); the
/// scalars are strings in __metadata__: "ktnn.checkpoint" (the format's
/// version), "ktnn.version", "ktnn.architecture", "ktnn.scalar",
/// "ktnn.optimizer" (its type) and "ktnn.optimizer.<counter>",
/// "ktnn.model.seed", "ktnn.model.steps", "ktnn.epochs", "ktnn.loader.*",
/// "ktnn.extras" and "ktnn.extra.<i>[.<counter>]", and the caller's own
/// entries (TrainingProgress::metadata). All in the model's scalar type, so
/// every value reads back to the same bits.

#include <ktnn/core/error.hpp>
#include <ktnn/io/model_file.hpp>
#include <ktnn/io/safetensors.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace ktnn {

/// Where a training run stands, besides its model and optimizer.
struct TrainingProgress {
  /// Epochs completed: the run that resumes starts at this one
  /// (FitOptions::first_epoch).
  int epochs = 0;
  /// The loader the epochs were drawn by: an epoch's order is a function of
  /// the seed and the epoch; the rest fixes which samples each batch holds.
  std::uint64_t loader_seed = 0;
  int batch_size = 0;
  bool shuffle = true;
  bool drop_last = false;
  std::uint64_t samples = 0;  ///< in the dataset
  /// The caller's own __metadata__ entries (no key "format" nor starting
  /// "ktnn."); load_checkpoint returns those of the file.
  std::map<std::string, std::string> metadata = {};
};

/// The progress of a run on `loader` after `epochs` epochs.
template <class Loader>
TrainingProgress training_progress(Loader const& loader, int epochs) {
  auto const& o = loader.options();
  return {.epochs = epochs,
          .loader_seed = o.seed,
          .batch_size = o.batch_size,
          .shuffle = o.shuffle,
          .drop_last = o.drop_last,
          .samples = std::uint64_t(loader.dataset().size())};
}

/// Throws ktnn::Error naming both values when `loader` would not draw the
/// batches the checkpoint's run drew (another seed, batch size, shuffling,
/// drop_last or dataset size), so resuming with it would not continue that run.
template <class Loader>
void check_loader(TrainingProgress const& progress, Loader const& loader) {
  auto const now = training_progress(loader, progress.epochs);
  auto differ = [](char const* what, auto saved, auto given) {
    detail::fail("ktnn::check_loader", "the checkpoint's loader had ", what, " ",
                 detail::counter_text(saved), ", this one has ", detail::counter_text(given),
                 ": resumed, its batches would not be the run's");
  };
  if (now.loader_seed != progress.loader_seed)
    differ("seed", progress.loader_seed, now.loader_seed);
  if (now.batch_size != progress.batch_size)
    differ("batch size", progress.batch_size, now.batch_size);
  if (now.shuffle != progress.shuffle) differ("shuffle", progress.shuffle, now.shuffle);
  if (now.drop_last != progress.drop_last) differ("drop_last", progress.drop_last, now.drop_last);
  if (now.samples != progress.samples) differ("dataset size", progress.samples, now.samples);
}

namespace io::detail {
/// The version of the checkpoint layout this ktnn writes and reads.
inline constexpr char checkpoint_format[] = "1";

/// The name of an optimizer buffer's slice for one parameter, or of the
/// whole buffer when it is not shaped like the parameter arena.
inline std::string optimizer_tensor_name(std::string const& buffer,
                                         ParameterInfo const* parameter) {
  return "ktnn.optimizer." + (parameter ? parameter->name + "." : std::string()) + buffer;
}

inline bool is_reserved_key(std::string const& key) {
  return key == "format" || key.rfind("ktnn.", 0) == 0;
}
}  // namespace io::detail

/// Writes a checkpoint of `model`, `optimizer` (a ktnn optimizer or wrapper:
/// optim/state.hpp), `progress` and any `extras` (objects with counters, e.g.
/// a ReduceLROnPlateau) to `path`, atomically: `path` is the old file or the
/// new one, whatever fails. Waits for the device.
template <class Model, class Optimizer, class... Extras>
void save_checkpoint(std::string const& path, Model const& model, Optimizer const& optimizer,
                     TrainingProgress const& progress, Extras const&... extras) {
  static_assert(CheckpointableOptimizer<Optimizer>,
                "ktnn::save_checkpoint: the optimizer has no checkpoint protocol "
                "(state_type, state_tensors, export_counters, import_counters: optim/state.hpp)");
  static_assert((HasCounters<Extras> && ...),
                "ktnn::save_checkpoint: an extra object has no state_type, export_counters and "
                "import_counters (optim/state.hpp)");
  using T = typename Model::value_type;
  char const* const op = "ktnn::save_checkpoint";
  if (progress.epochs < 0) detail::fail(op, path, ": progress.epochs is ", progress.epochs);
  for (auto const& [key, value] : progress.metadata)
    if (io::detail::is_reserved_key(key))
      detail::fail(op, path, ": metadata key '", key,
                   "' is reserved (\"format\" and keys starting \"ktnn.\" are ktnn's)");

  auto const params = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.parameters());
  auto const state = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.state());
  std::vector<io::OutTensor> tensors;
  io::detail::append_tensors<T>(tensors, model.parameter_index(), params.data(), std::nullopt);
  io::detail::append_tensors<T>(tensors, model.state_index(), state.data(), std::nullopt);
  std::vector<Kokkos::View<T*, Kokkos::HostSpace>> buffers;  // alive until serialized
  for (auto const& buffer : optimizer.state_tensors()) {
    auto const& host = buffers.emplace_back(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::save_checkpoint::buffer"),
        buffer.values.extent(0));
    Kokkos::deep_copy(host, buffer.values);
    if (host.extent(0) == model.parameters().extent(0)) {
      for (auto const& info : model.parameter_index())
        tensors.push_back({io::detail::optimizer_tensor_name(buffer.name, &info),
                           io::detail::dtype_of<T>(), info.shape,
                           std::span<T const>(host.data() + info.offset, info.size())});
    } else {
      tensors.push_back({io::detail::optimizer_tensor_name(buffer.name, nullptr),
                         io::detail::dtype_of<T>(),
                         {host.extent(0)},
                         std::span<T const>(host.data(), host.extent(0))});
    }
  }

  using detail::counter_text;
  auto metadata = io::detail::model_metadata<Model>();
  for (auto const& [key, value] : progress.metadata) metadata[key] = value;
  metadata["ktnn.checkpoint"] = io::detail::checkpoint_format;
  metadata["ktnn.optimizer"] = optimizer.state_type();
  for (auto const& [key, value] : optimizer.export_counters())
    metadata["ktnn.optimizer." + key] = value;
  metadata["ktnn.model.seed"] = counter_text(model.seed());
  metadata["ktnn.model.steps"] = counter_text(model.steps());
  metadata["ktnn.epochs"] = counter_text(progress.epochs);
  metadata["ktnn.loader.seed"] = counter_text(progress.loader_seed);
  metadata["ktnn.loader.batch_size"] = counter_text(progress.batch_size);
  metadata["ktnn.loader.shuffle"] = counter_text(progress.shuffle);
  metadata["ktnn.loader.drop_last"] = counter_text(progress.drop_last);
  metadata["ktnn.loader.samples"] = counter_text(progress.samples);
  metadata["ktnn.extras"] = counter_text(sizeof...(Extras));
  std::size_t i = 0;
  [[maybe_unused]] auto add_extra = [&](auto const& extra) {
    std::string const prefix = "ktnn.extra." + std::to_string(i++);
    metadata[prefix] = extra.state_type();
    for (auto const& [key, value] : extra.export_counters()) metadata[prefix + "." + key] = value;
  };
  (add_extra(extras), ...);

  auto const bytes = io::serialize(tensors, metadata);
  io::write_file(path, bytes);
}

namespace io::detail {
/// Entry `key` of a checkpoint's __metadata__, which must be there.
inline std::string const& checkpoint_entry(char const* op, std::string const& path,
                                           std::map<std::string, std::string> const& metadata,
                                           std::string const& key) {
  auto const it = metadata.find(key);
  if (it == metadata.end()) ktnn::detail::fail(op, path, ": __metadata__ has no '", key, "'");
  return it->second;
}

/// What the file is, before what it holds: a ktnn checkpoint of the format
/// this ktnn reads, of Model's architecture and scalar type, of the
/// optimizer's type, with extras of the types given.
template <class Model, class Optimizer, class... Extras>
void check_checkpoint_kind(char const* op, std::string const& path,
                           std::map<std::string, std::string> const& metadata,
                           Optimizer const& optimizer, Extras const&... extras) {
  using ktnn::detail::fail;
  auto const entry = [&](std::string const& key) -> std::string const& {
    return checkpoint_entry(op, path, metadata, key);
  };
  if (!metadata.count("ktnn.checkpoint"))
    fail(op, path,
         ": not a ktnn checkpoint (__metadata__ has no 'ktnn.checkpoint'); a model file "
         "(ktnn::save, PyTorch) is read by ktnn::load");
  if (entry("ktnn.checkpoint") != checkpoint_format)
    fail(op, path, ": checkpoint format '", entry("ktnn.checkpoint"), "', this ktnn (",
         ktnn::version, ") reads '", checkpoint_format, "'");
  auto const ours = model_metadata<Model>();
  if (entry("ktnn.architecture") != ours.at("ktnn.architecture"))
    fail(op, path, ": the checkpoint is of architecture ", entry("ktnn.architecture"),
         ", the model is ", ours.at("ktnn.architecture"));
  if (entry("ktnn.scalar") != ours.at("ktnn.scalar"))
    fail(op, path, ": the checkpoint's scalar type is ", entry("ktnn.scalar"), ", the model's is ",
         ours.at("ktnn.scalar"));
  if (entry("ktnn.optimizer") != optimizer.state_type())
    fail(op, path, ": the checkpoint's optimizer is ", entry("ktnn.optimizer"), ", this one is ",
         optimizer.state_type());
  std::string const extras_written = entry("ktnn.extras");
  if (extras_written != ktnn::detail::counter_text(sizeof...(Extras)))
    fail(op, path, ": the checkpoint holds ", extras_written,
         " extra objects (schedules saved after the progress), ", sizeof...(Extras), " given");
  std::size_t i = 0;
  [[maybe_unused]] auto check_type = [&](auto const& extra) {
    std::string const key = "ktnn.extra." + std::to_string(i++);
    if (entry(key) != extra.state_type())
      fail(op, path, ": extra object ", i - 1, " of the checkpoint is ", entry(key),
           ", the one given is ", extra.state_type());
  };
  (check_type(extras), ...);
}

/// The progress a checkpoint records (its counters read through `in`) and
/// the caller's own metadata.
inline TrainingProgress read_progress(char const* op, std::string const& path,
                                      ktnn::detail::CounterReader& in,
                                      std::map<std::string, std::string> const& metadata) {
  TrainingProgress progress;
  progress.epochs = in.get<int>("ktnn.epochs");
  if (progress.epochs < 0) ktnn::detail::fail(op, path, ": ktnn.epochs is ", progress.epochs);
  progress.loader_seed = in.get<std::uint64_t>("ktnn.loader.seed");
  progress.batch_size = in.get<int>("ktnn.loader.batch_size");
  progress.shuffle = in.get<bool>("ktnn.loader.shuffle");
  progress.drop_last = in.get<bool>("ktnn.loader.drop_last");
  progress.samples = in.get<std::uint64_t>("ktnn.loader.samples");
  for (auto const& [key, value] : metadata)
    if (!is_reserved_key(key)) progress.metadata[key] = value;
  return progress;
}

/// Host copies of what a checkpoint holds for a model and its optimizer:
/// copies of their own even where the model's memory is the host's
/// (create_mirror_view would return the model's arenas themselves there).
template <class T>
struct CheckpointArenas {
  using HostArena = Kokkos::View<T*, Kokkos::HostSpace>;
  HostArena params, state;
  std::vector<HostArena> buffers;  ///< in the order of the optimizer's state_tensors()
};

/// Reads a checkpoint's tensors into host arrays, each checked (there, of
/// the dtype and shape this model's checkpoint holds), and remembers which it
/// read, so that a tensor left over is an error too.
template <class T>
class CheckpointTensors {
 public:
  CheckpointTensors(char const* op, std::string const& path, Parsed const& parsed,
                    std::string const& optimizer)
      : op_(op), path_(path), parsed_(parsed), optimizer_(optimizer) {}

  void read(std::string const& name, std::vector<std::size_t> const& shape, DType dtype, T* host) {
    using ktnn::detail::fail;
    auto const* t = parsed_.find(name);
    if (t == nullptr)
      fail(op_, path_, ": tensor '", name, "' (shape ", shape_string(shape),
           ") is not in the checkpoint, which has ", parsed_.tensors.size(), " tensors (optimizer ",
           optimizer_, ")");
    if (t->dtype != dtype)
      fail(op_, path_, ": tensor '", name, "' is ", dtype_name(t->dtype),
           ", a checkpoint of this model holds ", dtype_name(dtype));
    if (t->shape != shape)
      fail(op_, path_, ": tensor '", name, "' has shape ", shape_string(t->shape),
           " in the checkpoint, expected ", shape_string(shape));
    auto const* bytes = parsed_.data.data() + t->begin;
    for (std::size_t k = 0; k < t->elements(); ++k) host[k] = T(element(dtype, bytes, k));
    used_.insert(name);
  }

  /// Throws unless every tensor of the file was read.
  void check_all_read(std::string const& architecture) const {
    for (auto const& t : parsed_.tensors)
      if (!used_.count(t.name))
        ktnn::detail::fail(op_, path_, ": the checkpoint's tensor '", t.name,
                           "' is neither the model's (", architecture, ") nor the optimizer's (",
                           optimizer_,
                           t.name.rfind("ktnn.optimizer.", 0) == 0
                               ? "; was one of them made with other options, e.g. momentum?)"
                               : ")");
  }

 private:
  char const* op_;
  std::string const& path_;
  Parsed const& parsed_;
  std::string optimizer_;
  std::set<std::string> used_;
};

/// The model's tensors and the optimizer's `buffers` from a checkpoint,
/// every tensor of it read and checked.
template <class Model, class Buffers>
CheckpointArenas<typename Model::value_type> read_checkpoint_tensors(
    char const* op, std::string const& path, Parsed const& parsed, Model const& model,
    std::string const& optimizer, Buffers const& buffers) {
  using T = typename Model::value_type;
  using HostArena = typename CheckpointArenas<T>::HostArena;
  CheckpointTensors<T> tensors(op, path, parsed, optimizer);
  CheckpointArenas<T> out{
      .params = HostArena(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::load_checkpoint::parameters"),
          model.parameters().extent(0)),
      .state =
          HostArena(Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::load_checkpoint::state"),
                    model.state().extent(0)),
      .buffers = {}};
  for (auto const& info : model.parameter_index())
    tensors.read(info.name, info.shape, dtype_of<T>(), out.params.data() + info.offset);
  for (auto const& info : model.state_index())
    tensors.read(info.name, info.shape, is_count(info.name) ? DType::I64 : dtype_of<T>(),
                 out.state.data() + info.offset);
  for (auto const& buffer : buffers) {
    auto const& host = out.buffers.emplace_back(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::load_checkpoint::buffer"),
        buffer.values.extent(0));
    if (host.extent(0) == model.parameters().extent(0)) {
      for (auto const& info : model.parameter_index())
        tensors.read(optimizer_tensor_name(buffer.name, &info), info.shape, dtype_of<T>(),
                     host.data() + info.offset);
    } else {
      tensors.read(optimizer_tensor_name(buffer.name, nullptr), {host.extent(0)}, dtype_of<T>(),
                   host.data());
    }
  }
  tensors.check_all_read(Model::architecture::name());
  return out;
}
}  // namespace io::detail

/// Reads the checkpoint `path` into `model`, `optimizer` and `extras` (the
/// objects given to save_checkpoint, freshly made or not) and returns its
/// progress. Throws ktnn::Error naming the file and the problem when the
/// file is damaged, or is of another architecture, scalar type, optimizer
/// type or configuration (naming what the file has and what was given), and
/// then nothing has changed: the whole file is read and checked on the host
/// before anything is copied.
template <class Model, class Optimizer, class... Extras>
TrainingProgress load_checkpoint(std::string const& path, Model& model, Optimizer& optimizer,
                                 Extras&... extras) {
  static_assert(CheckpointableOptimizer<Optimizer>,
                "ktnn::load_checkpoint: the optimizer has no checkpoint protocol "
                "(state_type, state_tensors, export_counters, import_counters: optim/state.hpp)");
  static_assert((HasCounters<Extras> && ...),
                "ktnn::load_checkpoint: an extra object has no state_type, export_counters and "
                "import_counters (optim/state.hpp)");
  char const* const op = "ktnn::load_checkpoint";
  auto const file = io::read_file(path);
  auto const& metadata = file.parsed.metadata;
  io::detail::check_checkpoint_kind<Model>(op, path, metadata, optimizer, extras...);

  // The scalars, all parsed and checked now.
  detail::CounterReader in(metadata, std::string(op) + ": " + path);
  TrainingProgress const progress = io::detail::read_progress(op, path, in, metadata);
  auto const model_seed = in.get<std::uint64_t>("ktnn.model.seed");
  auto const model_steps = in.get<std::uint64_t>("ktnn.model.steps");
  auto const optimizer_counters = in.sub("ktnn.optimizer.");
  std::vector<Counters> extra_counters;
  try {
    optimizer.import_counters(optimizer_counters, true);
    std::size_t i = 0;
    [[maybe_unused]] auto check_counters = [&](auto& extra) {
      extra_counters.push_back(in.sub("ktnn.extra." + std::to_string(i++) + "."));
      extra.import_counters(extra_counters.back(), true);
    };
    (check_counters(extras), ...);
  } catch (Error const& e) {
    detail::fail(op, path, ": ", e.what());  // the file named too
  }

  // The tensors, into host copies.
  auto const buffers = optimizer.state_tensors();
  auto const hosts = io::detail::read_checkpoint_tensors(op, path, file.parsed, model,
                                                         metadata.at("ktnn.optimizer"), buffers);

  // Everything checked: commit.
  Kokkos::deep_copy(model.parameters(), hosts.params);
  Kokkos::deep_copy(model.state(), hosts.state);
  for (std::size_t b = 0; b < buffers.size(); ++b)
    Kokkos::deep_copy(buffers[b].values, hosts.buffers[b]);
  optimizer.import_counters(optimizer_counters);
  std::size_t i = 0;
  [[maybe_unused]] auto restore = [&](auto& extra) { extra.import_counters(extra_counters[i++]); };
  (restore(extras), ...);
  model.set_seed(model_seed);
  model.set_steps(model_steps);
  return progress;
}

}  // namespace ktnn
