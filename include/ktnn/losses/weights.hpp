#pragma once
/// \file Per-class or per-output weights of a loss (CrossEntropy's class
/// weights, BinaryCrossEntropyWithLogits's pos_weight): a checked copy of the
/// caller's rank-1 View, as doubles, in that View's memory space.
///
/// Why a copy: the values are checked once, when the loss is made (finite,
/// >= 0), and the kernels then read exactly what was checked; a later change
/// to the caller's View cannot slip a negative weight in behind the check.
/// Why the memory space is erased (std::any): so a weighted loss is the same
/// type as the plain one (`ktnn::CrossEntropy` names one type, with weights or
/// without). The loss call knows its execution space and gets the View back
/// typed, or a ktnn::Error if that space does not use the weights' memory.

#include <ktnn/core/error.hpp>

#include <Kokkos_Core.hpp>

#include <any>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

namespace ktnn::detail {

class LossWeights {
 public:
  LossWeights() = default;

  /// Checks and copies `weights` (a rank-1 View of any arithmetic type, any
  /// layout, any memory space). \param operation e.g. "ktnn::CrossEntropy"
  /// \param what e.g. "class weight", for the messages
  template <class Weights>
  LossWeights(char const* operation, char const* what, Weights const& weights) {
    static_assert(Kokkos::is_view_v<Weights> && Weights::rank() == 1,
                  "ktnn: loss weights are a rank-1 Kokkos::View");
    static_assert(std::is_arithmetic_v<typename Weights::non_const_value_type>,
                  "ktnn: loss weights are numbers");
    using Mem = typename Weights::memory_space;
    auto const given = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, weights);
    std::size_t const n = given.extent(0);
    Kokkos::View<double*, Kokkos::HostSpace> host(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(operation) + "::weights"), n);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      double const w = double(given(i));
      if (!(std::isfinite(w) && w >= 0))
        fail(operation, what, " ", i, " is ", w, ", must be finite and >= 0");
      host(i) = w;
      total += w;
    }
    Stored<Mem> stored{
        Kokkos::View<double*, Mem>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(operation) + "::weights"),
            n),
        Kokkos::View<double, Mem>(std::string(operation) + "::weight_sum")};
    Kokkos::deep_copy(stored.values, host);
    state_ = std::make_shared<State const>(State{stored, n, total, Mem::name()});
  }

  bool empty() const { return !state_; }
  std::size_t size() const { return state_ ? state_->size : 0; }
  /// The sum of all the weights.
  double total() const { return state_ ? state_->total : 0.0; }

  /// The weights, for kernels of `ExecSpace`; throws unless they live in its
  /// memory space.
  template <class ExecSpace>
  Kokkos::View<double const*, typename ExecSpace::memory_space> values(char const* operation,
                                                                       char const* what) const {
    return stored<ExecSpace>(operation, what).values;
  }
  /// A device scalar for one sum over the weights (the loss call's first
  /// pass), shared by copies of the loss: calls with one loss object run in
  /// order on one execution space instance.
  template <class ExecSpace>
  Kokkos::View<double, typename ExecSpace::memory_space> scratch(char const* operation,
                                                                 char const* what) const {
    return stored<ExecSpace>(operation, what).scratch;
  }

 private:
  template <class Mem>
  struct Stored {
    Kokkos::View<double*, Mem> values;
    Kokkos::View<double, Mem> scratch;
  };
  struct State {
    std::any stored;  ///< a Stored<the memory space of the caller's View>
    std::size_t size;
    double total;
    std::string space;
  };

  template <class ExecSpace>
  Stored<typename ExecSpace::memory_space> const& stored(char const* operation,
                                                         char const* what) const {
    using Mem = typename ExecSpace::memory_space;
    auto const* s = state_ ? std::any_cast<Stored<Mem>>(&state_->stored) : nullptr;
    if (!s)
      fail(operation, "the ", what, " values are in ", state_ ? state_->space : std::string("no"),
           " memory, but ", ExecSpace::name(), " kernels read ", Mem::name(),
           " (make the loss with a View there)");
    return *s;
  }

  std::shared_ptr<State const> state_;
};

}  // namespace ktnn::detail
