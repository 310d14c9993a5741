#pragma once
/// \file Stochastic gradient descent with momentum, Nesterov momentum and L2
/// weight decay, as torch.optim.SGD (dampening 0). One kernel over the arena.

#include <ktnn/core/error.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>

namespace ktnn {

namespace detail {
/// The update of elements [begin, end), restrict-qualified so it vectorizes.
template <class T>
KOKKOS_INLINE_FUNCTION void sgd_update(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                       T* KOKKOS_RESTRICT velocity, std::size_t begin,
                                       std::size_t end, T const lr, T const momentum,
                                       T const weight_decay, bool const nesterov,
                                       bool const first) {
  for (std::size_t i = begin; i < end; ++i) {
    T d = g[i] + weight_decay * p[i];
    if (momentum != T(0)) {
      T const vi = first ? d : momentum * velocity[i] + d;
      velocity[i] = vi;
      d = nesterov ? d + momentum * vi : vi;
    }
    p[i] -= lr * d;
  }
}
}  // namespace detail

template <class T = float>
struct SGDOptions {
  T lr = T(0.01);
  T momentum = T(0);
  T weight_decay = T(0);  ///< added to the gradient: g += weight_decay * p
  bool nesterov = false;
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class SGD {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using Options = SGDOptions<T>;

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit SGD(Model const& model, Options options = {})
      : SGD(model.parameters().extent(0), options, model.execution()) {}

  SGD(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : exec_(exec), options_(options) {
    if (options.nesterov && options.momentum <= T(0))
      detail::fail("ktnn::SGD", "Nesterov momentum needs momentum > 0 (got ", options.momentum,
                   ")");
    if (options.momentum != T(0))
      velocity_ = Kokkos::View<T*, memory_space>(Kokkos::view_alloc(exec, "ktnn::SGD::velocity"),
                                                 param_count);
  }

  Options& options() { return options_; }
  std::int64_t steps() const { return steps_; }

  /// p -= lr * update(g): one fused kernel over the whole arena.
  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    if (params.extent(0) != grads.extent(0) ||
        (velocity_.data() && velocity_.extent(0) != params.extent(0)))
      detail::fail("ktnn::SGD::step", params.extent(0), " parameters, ", grads.extent(0),
                   " gradients, state for ", velocity_.extent(0));
    T const lr = options_.lr, mu = options_.momentum, wd = options_.weight_decay;
    bool const nesterov = options_.nesterov, first = steps_ == 0;
    T* const p = params.data();
    T const* const g = grads.data();
    T* const v = velocity_.data();
    ops::for_each_range(
        exec_, "ktnn::SGD::step", params.extent(0),
        KOKKOS_LAMBDA(std::size_t begin, std::size_t end) {
          detail::sgd_update(p, g, v, begin, end, lr, mu, wd, nesterov, first);
        });
    ++steps_;
  }

 private:
  ExecutionSpace exec_;
  Options options_;
  Kokkos::View<T*, memory_space> velocity_;
  std::int64_t steps_ = 0;
};

template <class Model>
SGD(Model const&, SGDOptions<typename Model::value_type> = {})
    -> SGD<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn
