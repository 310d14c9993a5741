#pragma once
/// \file RMSprop as torch.optim.RMSprop: a running average of squared
/// gradients (optionally centered by a running average of the gradients),
/// L2 weight decay added to the gradient, optional momentum on the scaled
/// gradient. One kernel over the whole parameter arena.

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
template <class T>
struct RMSpropCoefficients {
  T lr, alpha, eps, weight_decay, momentum;
  bool centered;
};

/// The update of elements [begin, end) whose gradients are all finite,
/// restrict-qualified so it vectorizes. `average` (centered) and `buffer`
/// (momentum) are only read when their option is on.
template <class T>
KOKKOS_INLINE_FUNCTION void rmsprop_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                                  T* KOKKOS_RESTRICT square,
                                                  T* KOKKOS_RESTRICT average,
                                                  T* KOKKOS_RESTRICT buffer, std::size_t begin,
                                                  std::size_t end, RMSpropCoefficients<T> const c) {
  using Kokkos::sqrt;
  for (std::size_t i = begin; i < end; ++i) {
    T const gi = g[i] + c.weight_decay * p[i];
    T const vi = c.alpha * square[i] + (T(1) - c.alpha) * (gi * gi);
    square[i] = vi;
    T variance = vi;
    if (c.centered) {
      // PyTorch's lerp: a + (1 - alpha) (g - a).
      T const ai = average[i] + (T(1) - c.alpha) * (gi - average[i]);
      average[i] = ai;
      variance = vi - ai * ai;
      // >= 0 in exact arithmetic; rounding must not make a NaN of it.
      variance = variance > T(0) ? variance : T(0);
    }
    // The fabs says variance >= 0, so the vector square root needs no errno path.
    T const d = gi / (sqrt(Kokkos::fabs(variance)) + c.eps);
    if (c.momentum > T(0)) {
      T const bi = c.momentum * buffer[i] + d;
      buffer[i] = bi;
      p[i] -= c.lr * bi;
    } else {
      p[i] -= c.lr * d;
    }
  }
}

/// RMSprop's update of a range whose gradients are all finite
/// (FiniteUpdate runs it).
template <class T>
struct RMSpropUpdate {
  T* p;
  T const* g;
  T* square;
  T* average;
  T* buffer;
  RMSpropCoefficients<T> c;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    rmsprop_update_finite(p, g, square, average, buffer, begin, end, c);
  }
};
}  // namespace detail

/// torch.optim.RMSprop's options and defaults.
template <class T = float>
struct RMSpropOptions {
  T lr = T(1e-2);
  T alpha = T(0.99);  ///< smoothing of the squared-gradient average
  T eps = T(1e-8);
  T weight_decay = T(0);  ///< added to the gradient: g += weight_decay * p
  T momentum = T(0);
  bool centered = false;  ///< divide by the gradient's running variance, not its mean square
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class RMSprop
    : public OptimizerBase<RMSprop<T, ExecutionSpace>, T, ExecutionSpace, RMSpropOptions<T>> {
  using Base = OptimizerBase<RMSprop, T, ExecutionSpace, RMSpropOptions<T>>;
  friend Base;

 public:
  using typename Base::memory_space;
  using Options = RMSpropOptions<T>;
  static constexpr char const* name = "RMSprop";
  /// The options a checkpoint saves (after "steps") and validate checks.
  static constexpr auto option_fields() {
    using R = OptionRange;
    return std::tuple{
        OptionField<Options, T>{"lr", &Options::lr, R::non_negative},
        OptionField<Options, T>{"alpha", &Options::alpha, R::unit_closed},
        OptionField<Options, T>{"eps", &Options::eps, R::positive},
        OptionField<Options, T>{"weight_decay", &Options::weight_decay, R::non_negative},
        OptionField<Options, T>{"momentum", &Options::momentum, R::non_negative},
        OptionField<Options, bool>{"centered", &Options::centered}};
  }

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit RMSprop(Model const& model, Options options = {})
      : RMSprop(model.parameters().extent(0), options, model.execution()) {}

  /// The buffers of momentum and of the centered average exist only when
  /// their option is on here (through options() later, the step throws).
  RMSprop(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : Base(options, exec),
        square_(Kokkos::view_alloc(exec, "ktnn::RMSprop::square_average"), param_count) {
    if (options.centered)
      average_ = Kokkos::View<T*, memory_space>(
          Kokkos::view_alloc(exec, "ktnn::RMSprop::gradient_average"), param_count);
    if (options.momentum > T(0))
      buffer_ = Kokkos::View<T*, memory_space>(
          Kokkos::view_alloc(exec, "ktnn::RMSprop::momentum_buffer"), param_count);
  }

  /// PyTorch's state "square_avg", "grad_avg" (centered) and
  /// "momentum_buffer" (momentum); the last two are empty when off.
  Kokkos::View<T*, memory_space> const& square_average() const { return square_; }
  Kokkos::View<T*, memory_space> const& gradient_average() const { return average_; }
  Kokkos::View<T*, memory_space> const& momentum_buffer() const { return buffer_; }

  /// PyTorch's state "square_avg", and "momentum_buffer" and "grad_avg" when
  /// the optimizer was made with momentum and centered.
  std::vector<StateTensor<T, memory_space>> state_tensors() const {
    std::vector<StateTensor<T, memory_space>> out{{"square_avg", square_}};
    if (buffer_.data()) out.push_back({"momentum_buffer", buffer_});
    if (average_.data()) out.push_back({"grad_avg", average_});
    return out;
  }

  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    char const* const label = "ktnn::RMSprop::step";
    this->check_step(label, params, grads, square_);
    Options const& o = this->options_;
    if (o.momentum > T(0) && !buffer_.data())
      detail::fail(label, "option momentum is ", o.momentum,
                   ", but the optimizer was made without momentum (no momentum buffer)");
    if (o.centered && !average_.data())
      detail::fail(label,
                   "option centered is on, but the optimizer was made without it (no gradient "
                   "average)");
    detail::RMSpropCoefficients<T> const c{o.lr,           o.alpha,    o.eps,
                                           o.weight_decay, o.momentum, o.centered};
    this->run_step(label, params.extent(0),
                   detail::RMSpropUpdate<T>{.p = params.data(),
                                            .g = grads.data(),
                                            .square = square_.data(),
                                            .average = average_.data(),
                                            .buffer = buffer_.data(),
                                            .c = c},
                   this->steps_ + 1);
    ++this->steps_;
  }

 private:
  /// A checkpoint cannot switch momentum or centered on: their buffers are missing.
  void check_imported(Options const& o, std::string const& operation) const {
    if (o.momentum > T(0) && !buffer_.data())
      detail::fail(operation, "counter 'momentum' is ", o.momentum,
                   ", but this optimizer was made without momentum (no momentum buffer)");
    if (o.centered && !average_.data())
      detail::fail(operation,
                   "counter 'centered' is true, but this optimizer was made without it (no "
                   "gradient average)");
  }

  Kokkos::View<T*, memory_space> square_;
  Kokkos::View<T*, memory_space> average_;
  Kokkos::View<T*, memory_space> buffer_;
};

template <class Model>
RMSprop(Model const&, RMSpropOptions<typename Model::value_type> = {})
    -> RMSprop<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn
