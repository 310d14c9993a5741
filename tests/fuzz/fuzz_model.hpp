#pragma once
// The model the safetensors fuzz target loads into, described without Kokkos
// (the fuzz build has no OpenMP runtime for clang): the parameter and state
// index of ktnn::Model<Sequential<Dense<3, 4, ReLU>, BatchNorm1d<4>, Dense<4,
// 2>>, float>, written out. tests/test_io.cpp checks that it is exactly the
// real model's, so the target loads into that model's layout.

#include <cstddef>
#include <string>
#include <vector>

namespace ktnn_fuzz {

/// One tensor of the model: what ktnn::ParameterInfo holds.
struct TensorSlot {
  std::string name;
  std::size_t offset;
  std::vector<std::size_t> shape;
  std::size_t size() const {
    std::size_t n = 1;
    for (auto e : shape) n *= e;
    return n;
  }
};

inline constexpr char const* model_name =
    "Sequential<Dense<3, 4, ReLU>, BatchNorm1d<4>, Dense<4, 2, Identity>>";
inline constexpr std::size_t param_count = 34;
inline constexpr std::size_t state_count = 9;

inline std::vector<TensorSlot> const& parameter_index() {
  static std::vector<TensorSlot> const index = {
      {"0.weight", 0, {4, 3}}, {"0.bias", 12, {4}},      {"2.weight", 16, {4}},
      {"2.bias", 20, {4}},     {"3.weight", 24, {2, 4}}, {"3.bias", 32, {2}},
  };
  return index;
}

inline std::vector<TensorSlot> const& state_index() {
  static std::vector<TensorSlot> const index = {
      {"2.running_mean", 0, {4}},
      {"2.running_var", 4, {4}},
      {"2.num_batches_tracked", 8, {}},
  };
  return index;
}

}  // namespace ktnn_fuzz
