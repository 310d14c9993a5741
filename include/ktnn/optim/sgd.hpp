#pragma once
/// \file Stochastic gradient descent with momentum, Nesterov momentum and L2
/// weight decay, as torch.optim.SGD (dampening 0). One kernel over the arena.

#include <ktnn/core/error.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/optim/checks.hpp>
#include <ktnn/optim/optimizer_base.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace ktnn {

namespace detail {
/// The update of elements [begin, end) whose gradients are all finite,
/// restrict-qualified so it vectorizes.
template <class T>
KOKKOS_INLINE_FUNCTION void sgd_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
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

/// SGD's update of a range whose gradients are all finite (FiniteUpdate
/// runs it).
template <class T>
struct SGDUpdate {
  T* p;
  T const* g;
  T* velocity;
  T lr, momentum, weight_decay;
  bool nesterov, first;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    sgd_update_finite(p, g, velocity, begin, end, lr, momentum, weight_decay, nesterov, first);
  }
};
}  // namespace detail

template <class T = float>
struct SGDOptions {
  T lr = T(0.01);
  T momentum = T(0);
  T weight_decay = T(0);  ///< added to the gradient: g += weight_decay * p
  bool nesterov = false;
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class SGD : public OptimizerBase<SGD<T, ExecutionSpace>, T, ExecutionSpace, SGDOptions<T>> {
  using Base = OptimizerBase<SGD, T, ExecutionSpace, SGDOptions<T>>;
  friend Base;

 public:
  using typename Base::memory_space;
  using Options = SGDOptions<T>;
  static constexpr char const* name = "SGD";
  /// The options a checkpoint saves (after "steps") and validate checks.
  static constexpr auto option_fields() {
    using R = OptionRange;
    return std::tuple{
        OptionField<Options, T>{"lr", &Options::lr, R::non_negative},
        OptionField<Options, T>{"momentum", &Options::momentum, R::non_negative},
        OptionField<Options, T>{"weight_decay", &Options::weight_decay, R::non_negative},
        OptionField<Options, bool>{"nesterov", &Options::nesterov}};
  }

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit SGD(Model const& model, Options options = {})
      : SGD(model.parameters().extent(0), options, model.execution()) {}

  /// Momentum can only be switched on here (through options() later, the
  /// step throws): it needs the velocity buffer.
  SGD(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : Base(options, exec) {
    if (options.momentum != T(0))
      velocity_ = Kokkos::View<T*, memory_space>(Kokkos::view_alloc(exec, "ktnn::SGD::velocity"),
                                                 param_count);
  }

  /// Throws ktnn::Error naming the option, its value and the allowed range.
  static void validate(Options const& o, char const* operation) {
    Base::validate(o, operation);
    if (o.nesterov && o.momentum <= T(0))
      detail::fail(operation, "Nesterov momentum needs momentum > 0 (got ", o.momentum, ")");
  }

  /// The velocity (empty without momentum).
  Kokkos::View<T*, memory_space> const& velocity() const { return velocity_; }

  /// PyTorch's state "momentum_buffer", when the optimizer was made with momentum.
  std::vector<StateTensor<T, memory_space>> state_tensors() const {
    if (!velocity_.data()) return {};
    return {{"momentum_buffer", velocity_}};
  }

  /// p -= lr * update(g): one fused kernel over the whole arena.
  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    char const* const label = "ktnn::SGD::step";
    this->check_step(label, params, grads, velocity_, true);
    Options const& o = this->options_;
    if (o.momentum != T(0) && !velocity_.data())
      detail::fail(label, "option momentum is ", o.momentum,
                   ", but the optimizer was made without momentum (no velocity buffer)");
    this->run_step(label, params.extent(0),
                   detail::SGDUpdate<T>{.p = params.data(),
                                        .g = grads.data(),
                                        .velocity = velocity_.data(),
                                        .lr = o.lr,
                                        .momentum = o.momentum,
                                        .weight_decay = o.weight_decay,
                                        .nesterov = o.nesterov,
                                        .first = this->steps_ == 0},
                   this->steps_ + 1);
    ++this->steps_;
  }

 private:
  /// A checkpoint cannot switch momentum on: there is no velocity buffer.
  void check_imported(Options const& o, std::string const& operation) const {
    if (o.momentum != T(0) && !velocity_.data())
      detail::fail(operation, "counter 'momentum' is ", o.momentum,
                   ", but this optimizer was made without momentum (no velocity buffer)");
  }

  Kokkos::View<T*, memory_space> velocity_;
};

template <class Model>
SGD(Model const&, SGDOptions<typename Model::value_type> = {})
    -> SGD<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn
