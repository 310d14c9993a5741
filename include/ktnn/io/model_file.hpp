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
#include <ktnn/io/load_tensors.hpp>
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

// LoadOptions: io/load_tensors.hpp.

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

}  // namespace io::detail

/// Writes the model's parameters and state to `path` (safetensors), under
/// PyTorch's names, atomically: `path` is either the old file or the new one,
/// whatever fails.
template <class Model>
void save(Model const& model, std::string const& path, SaveOptions const& options = {}) {
  using T = typename Model::value_type;
  if (options.dtype == io::DType::I64)
    ktnn::detail::fail("ktnn::save", path,
                       ": SaveOptions::dtype is I64, which ktnn keeps for counts; choose F64, "
                       "F32, F16 or BF16");
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

/// Loads a safetensors file already parsed in memory (io::parse) into the
/// model's parameters and state: the checks and conversions of load(model,
/// path), which calls it. Throws ktnn::Error naming the file, the tensor and
/// the problem, and then leaves the model as it was.
template <class Model>
void load(Model& model, io::Parsed const& parsed, LoadOptions const& options = {}) {
  // Copies, never mirror views: on a host space a mirror view is the arena
  // itself, and a file that fails half way would leave the model half loaded.
  // They start as the arenas, so anything no tensor names keeps its value.
  auto params =
      Kokkos::create_mirror(Kokkos::view_alloc(Kokkos::WithoutInitializing), model.parameters());
  auto state =
      Kokkos::create_mirror(Kokkos::view_alloc(Kokkos::WithoutInitializing), model.state());
  Kokkos::deep_copy(params, model.parameters());
  Kokkos::deep_copy(state, model.state());
  io::load_tensors(parsed, Model::architecture::name(), model.parameter_index(), params.data(),
                   model.state_index(), state.data(), options);
  Kokkos::deep_copy(model.parameters(), params);
  Kokkos::deep_copy(model.state(), state);
}

/// Reads `path` (safetensors, from ktnn or PyTorch) into the model's
/// parameters and state. Every tensor of the model must be in the file with
/// its shape; values of F32, F64, F16 or BF16 are converted to the model's
/// type. Throws ktnn::Error naming the file, the tensor and the problem, and
/// then leaves the model as it was.
template <class Model>
void load(Model& model, std::string const& path, LoadOptions const& options = {}) {
  auto const file = io::read_file(path);
  load(model, file.parsed, options);
}

}  // namespace ktnn
