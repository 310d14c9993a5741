#pragma once
/// \file Saving and loading a model's parameters and state as safetensors,
/// under the names and shapes of the equivalent torch.nn.Sequential's
/// state_dict, so PyTorch's `load_state_dict(..., strict=True)` takes the
/// file ktnn writes, and ktnn takes the file PyTorch writes.
///
///   ktnn::save(model, "net.safetensors");
///   ktnn::load(model, "net.safetensors");          // F32, F64, F16 or BF16
///
/// Saving copies the arenas to the host once; loading reads and checks the
/// whole file on the host, then copies each arena to the model's memory once.
/// Nothing in the model changes unless the whole file is good.

#include <ktnn/core/error.hpp>
#include <ktnn/io/safetensors.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/version.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ktnn {

struct SaveOptions {
  /// The element type written; empty: the model's own (F32 or F64).
  std::optional<io::DType> dtype = std::nullopt;
  /// Added to the header's __metadata__ (keys starting "ktnn." are ktnn's).
  std::map<std::string, std::string> metadata = {};
};

struct LoadOptions {
  /// Throw when the file holds a tensor the model does not have (PyTorch's
  /// strict=True). Either way, every tensor of the model must be there.
  bool strict = true;
  /// Throw when a value is NaN or Inf, naming the tensor and the element.
  bool check_finite = false;
};

namespace io::detail {
/// PyTorch keeps BatchNorm's batch count as int64: so does the file.
inline bool is_count(std::string_view name) {
  constexpr std::string_view suffix = "num_batches_tracked";
  return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
}

template <class T>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ktnn::save/load: models of float or double only");
  return std::is_same_v<T, float> ? DType::F32 : DType::F64;
}

inline std::string shape_string(std::vector<std::size_t> const& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// What ktnn writes in every file's __metadata__.
template <class Model>
std::map<std::string, std::string> model_metadata() {
  using T = typename Model::value_type;
  return {{"format", "pt"},  // what Hugging Face's tools look for
          {"ktnn.version", ktnn::version},
          {"ktnn.architecture", Model::architecture::name()},
          {"ktnn.scalar", std::is_same_v<T, float> ? "float" : "double"}};
}

/// The model's tensors (parameters, then state) pointing into host copies.
template <class T>
void append_tensors(std::vector<OutTensor>& out, std::vector<ParameterInfo> const& index,
                    T const* host, std::optional<DType> dtype) {
  for (auto const& info : index)
    out.push_back({info.name, is_count(info.name) ? DType::I64 : dtype.value_or(dtype_of<T>()),
                   info.shape, std::span<T const>(host + info.offset, info.size())});
}

/// Copies tensor `t` of `file` into host[offset, offset + size) as T,
/// checking shape (and values, when asked) first.
template <class T>
void read_tensor(Parsed const& file, TensorEntry const& t, ParameterInfo const& info, T* host,
                 LoadOptions const& options) {
  if (t.shape != info.shape)
    ktnn::detail::fail("ktnn::load", file.file, ": tensor '", info.name, "' has shape ",
                       shape_string(t.shape), " in the file, the model's is ",
                       shape_string(info.shape));
  auto const* bytes = file.data.data() + t.begin;
  for (std::size_t i = 0; i < info.size(); ++i) {
    double const v = element(t.dtype, bytes, i);
    if (options.check_finite && !std::isfinite(v))
      ktnn::detail::fail("ktnn::load", file.file, ": tensor '", info.name, "' element ", i, " is ",
                         v, " (check_finite is on)");
    host[info.offset + i] = T(v);
  }
}
}  // namespace io::detail

/// Writes the model's parameters and state to `path` (safetensors), under
/// PyTorch's names, atomically: `path` is either the old file or the new one,
/// whatever fails.
template <class Model>
void save(Model const& model, std::string const& path, SaveOptions const& options = {}) {
  using T = typename Model::value_type;
  auto const params = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.parameters());
  auto const state = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.state());
  std::vector<io::OutTensor> tensors;
  io::detail::append_tensors<T>(tensors, model.parameter_index(), params.data(), options.dtype);
  io::detail::append_tensors<T>(tensors, model.state_index(), state.data(), options.dtype);
  auto metadata = io::detail::model_metadata<Model>();
  for (auto const& [key, value] : options.metadata) metadata[key] = value;
  auto const bytes = io::serialize(tensors, metadata);
  io::write_file(path, bytes);
}

/// Reads `path` (safetensors, from ktnn or PyTorch) into the model's
/// parameters and state. Every tensor of the model must be in the file with
/// its shape; values of F32, F64, F16 or BF16 are converted to the model's
/// type. Throws ktnn::Error naming the file, the tensor and the problem, and
/// then leaves the model as it was.
template <class Model>
void load(Model& model, std::string const& path, LoadOptions const& options = {}) {
  using T = typename Model::value_type;
  auto const file = io::read_file(path);
  auto const& parsed = file.parsed;
  // Host arrays of their own, never mirrors: on a host space a mirror is the
  // model's own arena, and a tensor that fails late would leave the earlier
  // ones already overwritten.
  Kokkos::View<T*, Kokkos::HostSpace> params(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::load::parameters"),
      model.parameters().extent(0));
  Kokkos::View<T*, Kokkos::HostSpace> state(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::load::state"),
      model.state().extent(0));
  std::size_t found = 0;
  auto read_all = [&](std::vector<ParameterInfo> const& index, T* host) {
    for (auto const& info : index) {
      auto const* t = parsed.find(info.name);
      if (t == nullptr)
        ktnn::detail::fail("ktnn::load", path, ": the model's tensor '", info.name, "' (shape ",
                           io::detail::shape_string(info.shape), ") is not in the file, which has ",
                           parsed.tensors.size(), " tensors; the model is ",
                           Model::architecture::name());
      io::detail::read_tensor(parsed, *t, info, host, options);
      ++found;
    }
  };
  read_all(model.parameter_index(), params.data());
  read_all(model.state_index(), state.data());
  if (options.strict && found != parsed.tensors.size())
    for (auto const& t : parsed.tensors) {
      bool known = false;
      for (auto const* index : {&model.parameter_index(), &model.state_index()})
        for (auto const& info : *index) known |= info.name == t.name;
      if (!known && t.name.rfind("ktnn.", 0) != 0)
        ktnn::detail::fail("ktnn::load", path, ": the file's tensor '", t.name,
                           "' is not in the model ", Model::architecture::name(),
                           " (LoadOptions::strict)");
    }
  Kokkos::deep_copy(model.parameters(), params);
  Kokkos::deep_copy(model.state(), state);
}

}  // namespace ktnn
