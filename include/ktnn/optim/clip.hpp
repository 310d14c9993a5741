#pragma once
/// \file Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_:
/// the L2 norm of the whole gradient arena, then every gradient times
/// max_norm / (norm + 1e-6) where that is below 1.
///
/// Nothing goes through the host: the norm is reduced into a device scalar,
/// the scaling kernel reads the factor from the device, and the norm is
/// returned as that device scalar for the caller to read when it chooses.
/// The reduction sums fixed blocks in a fixed order, so the norm repeats bit
/// for bit whatever the thread count.
///
/// As PyTorch: a NaN gradient makes the norm NaN and every gradient NaN (so
/// a ktnn optimizer skips the whole step and reports it); an infinite one
/// makes the norm Inf, the finite gradients 0 and itself NaN.

#include <ktnn/core/error.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/space.hpp>
#include <ktnn/optim/checks.hpp>
#include <ktnn/optim/forwarding.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

namespace detail {
/// Elements a host work item sums (as ops::for_each_range's chunks).
inline constexpr std::size_t clip_host_block = 4096;

/// The sum of g[i]^2 over [begin, end) in double, in a fixed order: eight
/// running sums (so the loop vectorizes without reassociating) added pairwise.
template <class T>
KOKKOS_INLINE_FUNCTION double sum_of_squares(T const* KOKKOS_RESTRICT g, std::size_t begin,
                                             std::size_t end) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += double(g[i + l]) * double(g[i + l]);
  for (; i < end; ++i) s[0] += double(g[i]) * double(g[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <class T>
KOKKOS_INLINE_FUNCTION void scale_range(T* KOKKOS_RESTRICT g, std::size_t begin, std::size_t end,
                                        T const factor) {
  for (std::size_t i = begin; i < end; ++i) g[i] *= factor;
}

/// How many partial sums the norm of n gradients takes on ExecSpace: one
/// per host block, or one per team on devices (a function of the device
/// alone, so the same split every run).
template <class ExecSpace>
std::size_t clip_partials(ExecSpace const& exec, std::size_t n) {
  if (n == 0) return 0;
  if constexpr (ops::device_kernels<ExecSpace>) {
    std::size_t const teams = std::size_t(ops::device_team_target(exec));
    std::size_t const runs = (n + 255) / 256;  // no team with fewer than 256 elements
    return teams < runs ? teams : runs;
  } else {
    return (n + clip_host_block - 1) / clip_host_block;
  }
}

/// The kernels of clip_gradient_norm, one tag each: the partial sums of
/// squares (a team per contiguous block on devices, a fixed block per work
/// item on host spaces), their total in order (norm and factor into device
/// scalars), and the scaling (the range body of ops::for_each_range).
template <class ExecSpace, class T>
struct ClipGradientNorm {
  struct TeamSquares {};
  struct BlockSquares {};
  struct Total {};
  using Mem = typename ExecSpace::memory_space;
  using member_type = typename Kokkos::TeamPolicy<ExecSpace>::member_type;

  T* g;
  std::size_t n, parts, per_team;
  double* sums;
  T max_norm;
  Kokkos::View<T, Mem> norm, factor;

  /// Neighbouring threads on neighbouring elements; the team's reduction has
  /// a fixed shape.
  KOKKOS_FUNCTION void operator()(TeamSquares, member_type const& team) const {
    std::size_t const begin = std::size_t(team.league_rank()) * per_team;
    std::size_t const end = begin + per_team < n ? begin + per_team : n;
    double sum = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, begin, end),
        [&](std::size_t i, double& local) {
          double const v = double(g[i]);
          local += v * v;
        },
        sum);
    Kokkos::single(Kokkos::PerTeam(team), [&] { sums[team.league_rank()] = sum; });
  }
  KOKKOS_FUNCTION void operator()(BlockSquares, std::size_t c) const {
    std::size_t const begin = c * clip_host_block;
    std::size_t const end = begin + clip_host_block < n ? begin + clip_host_block : n;
    sums[c] = sum_of_squares(g, begin, end);
  }
  /// PyTorch: factor = max_norm / (norm + 1e-6), in the gradients' type.
  KOKKOS_FUNCTION void operator()(Total, int) const {
    double total = 0;
    for (std::size_t c = 0; c < parts; ++c) total += sums[c];
    T const value = T(Kokkos::sqrt(total));
    norm() = value;
    factor() = max_norm / (value + T(1e-6));
  }
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    T const f = factor();
    // Clamped to 1, where nothing changes; a NaN factor scales (to NaN).
    if (!(f >= T(1))) scale_range(g, begin, end, f);
  }
};

/// The three kernels: partial sums of squares, their total in order (norm and
/// factor into device scalars), the scaling. `partial` holds at least
/// clip_partials(exec, n) values.
template <class ExecSpace, class T>
void clip_gradient_norm(ExecSpace const& exec, T* g, std::size_t n, T max_norm,
                        Kokkos::View<double*, typename ExecSpace::memory_space> const& partial,
                        Kokkos::View<T, typename ExecSpace::memory_space> const& norm,
                        Kokkos::View<T, typename ExecSpace::memory_space> const& factor) {
  std::size_t const parts = clip_partials(exec, n);
  if (partial.extent(0) < parts)
    fail("ktnn::clip_gradient_norm", "room for ", partial.extent(0), " partial sums, ", parts,
         " needed for ", n, " gradients");
  using Kernel = ClipGradientNorm<ExecSpace, T>;
  Kernel const kernel{.g = g,
                      .n = n,
                      .parts = parts,
                      .per_team = parts > 0 ? (n + parts - 1) / parts : 0,
                      .sums = partial.data(),
                      .max_norm = max_norm,
                      .norm = norm,
                      .factor = factor};
  if (parts > 0) {
    if constexpr (ops::device_kernels<ExecSpace>) {
      Kokkos::parallel_for("ktnn::clip_gradient_norm::squares",
                           Kokkos::TeamPolicy<ExecSpace, typename Kernel::TeamSquares>(
                               exec, int(parts), ops::device_team_size<ExecSpace>),
                           kernel);
    } else {
      Kokkos::parallel_for(
          "ktnn::clip_gradient_norm::squares",
          Kokkos::RangePolicy<ExecSpace, typename Kernel::BlockSquares>(exec, 0, parts), kernel);
    }
  }
  Kokkos::parallel_for("ktnn::clip_gradient_norm::total",
                       Kokkos::RangePolicy<ExecSpace, typename Kernel::Total>(exec, 0, 1), kernel);
  ops::for_each_range(exec, "ktnn::clip_gradient_norm::scale", n, kernel);
}
}  // namespace detail

/// Clips gradient arenas to a global L2 norm; its buffers are allocated once
/// (and grown when an arena is larger), so a clip allocates nothing.
template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class GradientClipper {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;

  /// `exec` should be the model's (model.execution()), so the clip runs in
  /// order with its backward pass.
  explicit GradientClipper(T max_norm, ExecutionSpace const& exec = {})
      : exec_(exec),
        norm_(Kokkos::view_alloc(exec, "ktnn::clip_gradient_norm::norm")),
        factor_(Kokkos::view_alloc(exec, "ktnn::clip_gradient_norm::factor")) {
    set_max_norm(max_norm);
  }

  T max_norm() const { return max_norm_; }
  void set_max_norm(T max_norm) {
    detail::check_option("ktnn::clip_gradient_norm", "max_norm", max_norm, max_norm > T(0),
                         "a finite value > 0");
    max_norm_ = max_norm;
  }

  /// Scales `grads` in place so that their L2 norm is at most max_norm;
  /// returns their norm before clipping (a device scalar, overwritten by the
  /// next clip). Does not wait for the device.
  Kokkos::View<T, memory_space> const& operator()(Kokkos::View<T*, memory_space> const& grads) {
    std::size_t const parts = detail::clip_partials(exec_, grads.extent(0));
    if (partial_.extent(0) < parts)
      partial_ = Kokkos::View<double*, memory_space>(
          Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing,
                             "ktnn::clip_gradient_norm::partial"),
          parts);
    detail::clip_gradient_norm(exec_, grads.data(), grads.extent(0), max_norm_, partial_, norm_,
                               factor_);
    return norm_;
  }

  /// The norm before the last clip (a device scalar).
  Kokkos::View<T, memory_space> const& norm() const { return norm_; }

 private:
  ExecutionSpace exec_;
  T max_norm_ = T(0);
  Kokkos::View<double*, memory_space> partial_;
  Kokkos::View<T, memory_space> norm_;
  Kokkos::View<T, memory_space> factor_;
};

/// torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm): scales the
/// model's gradient arena in place so its L2 norm is at most `max_norm`, on
/// the model's execution space, and returns the norm before clipping as a
/// device scalar (read it with deep_copy when needed; nothing waits here).
/// Allocates its small buffers on each call: in a loop, keep a
/// GradientClipper or wrap the optimizer in Clipped.
template <class Model>
  requires requires(Model const& m) {
    m.gradients();
    m.execution();
  }
Kokkos::View<typename Model::value_type, typename Model::memory_space> clip_gradient_norm(
    Model const& model, typename Model::value_type max_norm) {
  GradientClipper<typename Model::value_type, typename Model::execution_space> clip(
      max_norm, model.execution());
  return clip(model.gradients());
}

/// An optimizer whose every step first clips the gradients to a global norm
/// (what clip_grad_norm_ before optimizer.step() does in PyTorch), usable
/// wherever the optimizer is: fit, train_step, the physics-informed
/// train_step. It holds a reference: the optimizer must outlive it. Its
/// checkpoint state (optim/state.hpp) is the wrapped optimizer's, plus max_norm.
template <class Inner>
class Clipped : public ForwardingOptimizer<Clipped<Inner>, Inner> {
  using Base = ForwardingOptimizer<Clipped, Inner>;
  friend Base;

 public:
  using typename Base::execution_space;
  using typename Base::memory_space;
  using typename Base::value_type;
  static constexpr char const* name = "Clipped";

  /// `exec` should be the model's (model.execution()).
  Clipped(Inner& optimizer, value_type max_norm, execution_space const& exec = {})
      : Base(optimizer), clip_(max_norm, exec) {}
  Clipped(Inner&&, value_type, execution_space const& = {}) = delete;  // would dangle

  void step(Kokkos::View<value_type*, memory_space> const& params,
            Kokkos::View<value_type*, memory_space> const& grads) {
    clip_(grads);
    this->optimizer().step(params, grads);
  }

  /// The norm of the last step's gradients before clipping (a device scalar).
  Kokkos::View<value_type, memory_space> const& norm() const { return clip_.norm(); }
  GradientClipper<value_type, execution_space>& clipper() { return clip_; }

  std::int64_t steps() const
    requires requires(Inner const& o) { o.steps(); }
  {
    return this->optimizer().steps();
  }

 private:
  Counters own_counters() const { return {{"max_norm", detail::counter_text(clip_.max_norm())}}; }
  value_type read_counters(detail::CounterReader& in) const {
    return in.get<value_type>("max_norm");
  }
  void check_counters(value_type max_norm, detail::CounterReader const& in) const {
    detail::check_option(in.operation().c_str(), "max_norm", max_norm, max_norm > value_type(0),
                         "a finite value > 0");
  }
  void apply_counters(value_type max_norm) { clip_.set_max_norm(max_norm); }

  GradientClipper<value_type, execution_space> clip_;
};

}  // namespace ktnn
