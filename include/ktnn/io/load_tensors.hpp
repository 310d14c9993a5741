#pragma once
/// \file Loading the tensors of a parsed safetensors file into a model's
/// arenas, on the host: the checks and conversions of ktnn::load without
/// Kokkos or a file on disk.
///
/// ktnn::load (io/model_file.hpp) reads the file, calls load_tensors on host
/// copies of the arenas and copies them back only if it returns; the fuzz
/// target (tests/fuzz/fuzz_safetensors.cpp) calls it on bytes in memory, so
/// hostile files go through the same code as files read from disk, in a
/// build without Kokkos.

#include <ktnn/core/error.hpp>
#include <ktnn/io/safetensors.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

namespace ktnn {

struct LoadOptions {
  /// Throw when the file holds a tensor the model does not have (PyTorch's
  /// strict=True). Either way, every tensor of the model must be there.
  bool strict = true;
  /// Throw when a value is NaN or Inf (in the file, or once converted to the
  /// model's type), naming the tensor and the element.
  bool check_finite = false;
};

namespace io {
namespace detail {
inline std::string shape_string(std::vector<std::size_t> const& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    // Two appends, not "a" + to_string(): GCC 12 warns falsely (-Wrestrict) on that.
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Copies tensor `t` of `file` into host[offset, offset + size) as T,
/// checking shape (and values, when asked) first.
template <class T, class Info>
void read_tensor(Parsed const& file, TensorEntry const& t, Info const& info, T* host,
                 LoadOptions const& options) {
  if (t.shape != info.shape)
    ktnn::detail::fail("ktnn::load", file.file, ": tensor '", info.name, "' has shape ",
                       shape_string(t.shape), " in the file, the model's is ",
                       shape_string(info.shape));
  auto const* bytes = file.data.data() + t.begin;
  for (std::size_t i = 0; i < info.size(); ++i) {
    double const v = element(t.dtype, bytes, i);
    T const x = T(v);  // an F64 beyond float's range becomes Inf here
    if (options.check_finite && !std::isfinite(x))
      ktnn::detail::fail("ktnn::load", file.file, ": tensor '", info.name, "' element ", i, " is ",
                         v, std::isfinite(v) ? " in the file, beyond the model's type" : "",
                         " (check_finite is on)");
    host[info.offset + i] = x;
  }
}
}  // namespace detail

/// Loads the tensors of the parsed file `file` into host copies of a model's two arenas:
/// `params` and `state`, laid out as `params_index` and `state_index` say
/// (ParameterInfo lists, as Model::parameter_index() and state_index() give:
/// any type with name, offset, shape and size()). Every tensor of the index
/// must be in the file with its shape; F32, F64, F16, BF16 and I64 values are
/// converted to T. `model_name` names the model in errors. Throws ktnn::Error
/// naming the file, the tensor and the problem; the buffers may then be
/// partly written, so callers load into copies and keep them only when this
/// returns.
template <class T, class Info>
void load_tensors(Parsed const& file, std::string_view model_name,
                  std::vector<Info> const& params_index, T* params,
                  std::vector<Info> const& state_index, T* state, LoadOptions const& options = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ktnn::load: models of float or double only");
  auto read_all = [&](std::vector<Info> const& index, T* host) {
    for (auto const& info : index) {
      auto const* t = file.find(info.name);
      if (t == nullptr)
        ktnn::detail::fail("ktnn::load", file.file, ": the model's tensor '", info.name,
                           "' (shape ", detail::shape_string(info.shape),
                           ") is not in the file, which has ", file.tensors.size(),
                           " tensors; the model is ", model_name);
      detail::read_tensor(file, *t, info, host, options);
    }
  };
  read_all(params_index, params);
  read_all(state_index, state);
  if (!options.strict) return;
  std::unordered_set<std::string_view> known;
  for (auto const* index : {&params_index, &state_index})
    for (auto const& info : *index) known.insert(info.name);
  for (auto const& t : file.tensors)
    if (!known.contains(t.name) && t.name.rfind("ktnn.", 0) != 0)
      ktnn::detail::fail("ktnn::load", file.file, ": the file's tensor '", t.name,
                         "' is not in the model ", model_name, " (LoadOptions::strict)");
}

}  // namespace io
}  // namespace ktnn
