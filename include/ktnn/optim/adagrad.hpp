#pragma once
/// \file Adagrad as torch.optim.Adagrad: a running sum of squared gradients
/// per parameter, a learning rate decayed as lr / (1 + (t - 1) lr_decay),
/// L2 weight decay added to the gradient. One kernel over the whole arena.

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
/// restrict-qualified so it vectorizes. `clr` is this step's decayed rate.
template <class T>
KOKKOS_INLINE_FUNCTION void adagrad_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                                  T* KOKKOS_RESTRICT sum, std::size_t begin,
                                                  std::size_t end, T const clr, T const eps,
                                                  T const weight_decay) {
  using Kokkos::sqrt;
  for (std::size_t i = begin; i < end; ++i) {
    T const gi = g[i] + weight_decay * p[i];
    T const si = sum[i] + gi * gi;
    sum[i] = si;
    // si >= 0; the fabs tells the compiler so (vector square root, no errno path).
    p[i] -= clr * (gi / (sqrt(Kokkos::fabs(si)) + eps));
  }
}

/// Adagrad's update of a range whose gradients are all finite, with this
/// step's decayed rate `clr` (FiniteUpdate runs it).
template <class T>
struct AdagradUpdate {
  T* p;
  T const* g;
  T* sum;
  T clr, eps, weight_decay;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    adagrad_update_finite(p, g, sum, begin, end, clr, eps, weight_decay);
  }
};
}  // namespace detail

/// torch.optim.Adagrad's options and defaults.
template <class T = float>
struct AdagradOptions {
  T lr = T(1e-2);
  T lr_decay = T(0);                   ///< step t uses lr / (1 + (t - 1) lr_decay)
  T weight_decay = T(0);               ///< added to the gradient: g += weight_decay * p
  T initial_accumulator_value = T(0);  ///< the sum of squares before the first step
  T eps = T(1e-10);
};

/// Adagrad; its learning_rate() is the rate before lr_decay (what a schedule sets).
template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class Adagrad
    : public OptimizerBase<Adagrad<T, ExecutionSpace>, T, ExecutionSpace, AdagradOptions<T>> {
  using Base = OptimizerBase<Adagrad, T, ExecutionSpace, AdagradOptions<T>>;

 public:
  using typename Base::memory_space;
  using Options = AdagradOptions<T>;
  static constexpr char const* name = "Adagrad";
  /// The options a checkpoint saves (after "steps") and validate checks
  /// (initial_accumulator_value is used at construction only).
  static constexpr auto option_fields() {
    using R = OptionRange;
    return std::tuple{
        OptionField<Options, T>{"lr", &Options::lr, R::non_negative},
        OptionField<Options, T>{"lr_decay", &Options::lr_decay, R::non_negative},
        OptionField<Options, T>{"weight_decay", &Options::weight_decay, R::non_negative},
        OptionField<Options, T>{"initial_accumulator_value", &Options::initial_accumulator_value,
                                R::non_negative},
        OptionField<Options, T>{"eps", &Options::eps, R::positive}};
  }

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit Adagrad(Model const& model, Options options = {})
      : Adagrad(model.parameters().extent(0), options, model.execution()) {}

  Adagrad(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : Base(options, exec),
        sum_(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, "ktnn::Adagrad::sum"),
             param_count) {
    ops::fill(exec, "ktnn::Adagrad::initial_accumulator", sum_.data(), param_count,
              options.initial_accumulator_value);
  }

  /// PyTorch's state "sum": the running sum of squared gradients.
  Kokkos::View<T*, memory_space> const& sum_of_squares() const { return sum_; }

  /// PyTorch's state "sum".
  std::vector<StateTensor<T, memory_space>> state_tensors() const { return {{"sum", sum_}}; }

  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    char const* const label = "ktnn::Adagrad::step";
    this->check_step(label, params, grads, sum_);
    Options const& o = this->options_;
    // The decayed rate on the host in double, once per step.
    T const clr = T(double(o.lr) / (1.0 + double(this->steps_) * double(o.lr_decay)));
    this->run_step(label, params.extent(0),
                   detail::AdagradUpdate<T>{.p = params.data(),
                                            .g = grads.data(),
                                            .sum = sum_.data(),
                                            .clr = clr,
                                            .eps = o.eps,
                                            .weight_decay = o.weight_decay},
                   this->steps_ + 1);
    ++this->steps_;
  }

 private:
  Kokkos::View<T*, memory_space> sum_;
};

template <class Model>
Adagrad(Model const&, AdagradOptions<typename Model::value_type> = {})
    -> Adagrad<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn
