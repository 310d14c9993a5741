#pragma once
/// \file Inference<Architecture, T, MemorySpace>: a trained network's forward
/// pass for one sample, for use inside a user's own kernel (thread level), and
/// its team form, StagedInference<Architecture, T>: the same pass with the
/// weights staged once per team in scratch memory (Inference::stage).
/// This header is light on purpose (the layers and Kokkos, no file, zlib or
/// stream headers), so a simulation's kernel file can include it alone.
///
/// Arguments have their extents in their types: `S x[in_features]`,
/// `Kokkos::Array<S, in_features>`; a wrong extent is a compile error. Rows of
/// a View (any layout, e.g. `Kokkos::subview(field, i, Kokkos::ALL)`) are read
/// and written through their strides. S may differ from T (a dual number).

#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/layers/standardize.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn {

namespace detail {
template <class T>
inline constexpr bool dependent_false = false;
}  // namespace detail

/// The per-sample call operators of Inference and StagedInference, written
/// once for every way of holding the weights. Holder (Inference: Views of the
/// model's arenas; StagedInference: pointers into a team's scratch) derives
/// from it and gives parameter_data() and state_data().
template <class Architecture, class Holder>
struct InferenceCalls {
  static constexpr int in_features = Architecture::in_features;
  static constexpr int out_features = Architecture::out_features;

  /// y = f(x) on C arrays.
  template <class S>
  KOKKOS_INLINE_FUNCTION void operator()(S const (&x)[in_features], S (&y)[out_features]) const {
    Architecture::apply(holder().parameter_data(), holder().state_data(), &x[0], &y[0]);
  }

  /// y = f(x) on Kokkos::Arrays.
  template <class S>
  KOKKOS_INLINE_FUNCTION void operator()(Kokkos::Array<S, in_features> const& x,
                                         Kokkos::Array<S, out_features>& y) const {
    Architecture::apply(holder().parameter_data(), holder().state_data(), x.data(), y.data());
  }

  /// f(x), returned.
  template <class S>
  KOKKOS_INLINE_FUNCTION Kokkos::Array<S, out_features> operator()(
      Kokkos::Array<S, in_features> const& x) const {
    Kokkos::Array<S, out_features> y;
    Architecture::apply(holder().parameter_data(), holder().state_data(), x.data(), y.data());
    return y;
  }

  /// y = f(x) on rank-1 Views of any layout (rows of a user's fields). Their
  /// extents are runtime: a mismatch aborts the kernel with this message.
  template <class XView, class YView>
    requires(Kokkos::is_view_v<XView> && Kokkos::is_view_v<YView>)
  KOKKOS_INLINE_FUNCTION void operator()(XView const& x, YView const& y) const {
    static_assert(XView::rank() == 1 && YView::rank() == 1,
                  "ktnn::Inference: rows are rank-1 Views (Kokkos::subview(v, i, Kokkos::ALL))");
    using S = typename YView::non_const_value_type;
    if (x.extent(0) != std::size_t(in_features) || y.extent(0) != std::size_t(out_features))
      Kokkos::abort(
          "ktnn::Inference: a row's extent is not the network's in_features or "
          "out_features");
    S in[in_features], out[out_features];
    for (int j = 0; j < in_features; ++j) in[j] = S(x(j));
    Architecture::apply(holder().parameter_data(), holder().state_data(), in, out);
    for (int j = 0; j < out_features; ++j) y(j) = out[j];
  }

  /// f(x) for a row of a View (any layout), returned.
  template <class XView>
    requires Kokkos::is_view_v<XView>
  KOKKOS_INLINE_FUNCTION auto operator()(XView const& x) const {
    static_assert(XView::rank() == 1,
                  "ktnn::Inference: rows are rank-1 Views (Kokkos::subview(v, i, Kokkos::ALL))");
    using S = typename XView::non_const_value_type;
    if (x.extent(0) != std::size_t(in_features))
      Kokkos::abort("ktnn::Inference: a row's extent is not the network's in_features");
    Kokkos::Array<S, in_features> in;
    for (int j = 0; j < in_features; ++j) in[j] = x(j);
    Kokkos::Array<S, out_features> y;
    Architecture::apply(holder().parameter_data(), holder().state_data(), in.data(), y.data());
    return y;
  }

  /// Anything else (a raw pointer, an array of another extent) is refused at
  /// compile time rather than read past its end.
  template <class X, class Y>
  KOKKOS_INLINE_FUNCTION void operator()(X const&, Y const&) const
    requires(!(Kokkos::is_view_v<X> && Kokkos::is_view_v<Y>))
  {
    static_assert(detail::dependent_false<X>,
                  "ktnn::Inference: x must be S[in_features] or Kokkos::Array<S, in_features> "
                  "and y S[out_features] or Kokkos::Array<S, out_features> (or both rank-1 "
                  "Views); the extents are the network's");
  }

 private:
  KOKKOS_INLINE_FUNCTION Holder const& holder() const { return static_cast<Holder const&>(*this); }
};

namespace detail {
/// Scratch for the weights: parameters then state, T each, in one block, as
/// Kokkos sizes a scratch View (the values plus room to align the start; the
/// alignment is at least Kokkos::ScratchMemorySpace's ALIGN, 8 bytes).
template <class Architecture, class T>
struct TeamScratch {
  static constexpr std::size_t values = Architecture::param_count + Architecture::state_count;
  static constexpr std::size_t alignment = alignof(T) > 8 ? alignof(T) : 8;
  static constexpr std::size_t bytes = values * sizeof(T) + alignment;
  static_assert(values <= std::size_t(0x7fffffff) / sizeof(T),
                "ktnn::Inference::stage: the weights exceed what a team's scratch can hold");
};
}  // namespace detail

/// The per-sample forward pass of a team whose weights sit in the team's
/// scratch memory: what Inference::stage returns. Its call operators are
/// Inference's (the same code); it is valid inside the team kernel that made
/// it, for that team only.
template <class Architecture, class T>
struct StagedInference : InferenceCalls<Architecture, StagedInference<Architecture, T>> {
  using value_type = T;
  T const* parameters = nullptr;  ///< in the team's scratch
  T const* state = nullptr;       ///< in the team's scratch, after the parameters

  KOKKOS_INLINE_FUNCTION T const* parameter_data() const { return parameters; }
  KOKKOS_INLINE_FUNCTION T const* state_data() const { return state; }
};

/// The per-sample forward pass of a model (Model::inference()). Copy it into a
/// kernel by value; it shares the model's parameters and state.
///
/// One sample per thread, in any kernel:
/// ```
/// auto net = model.inference();
/// Kokkos::parallel_for(n, KOKKOS_LAMBDA(int i) {
///   net(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(y, i, Kokkos::ALL));
/// });
/// ```
/// In a TeamPolicy kernel, a team evaluates a tile of samples with the weights
/// staged once in its scratch memory (`stage`):
/// ```
/// using Policy = Kokkos::TeamPolicy<Space>;
/// int const level = net.team_scratch_bytes() <= std::size_t(Policy::scratch_size_max(0)) ? 0 : 1;
/// Policy policy((n + tile - 1) / tile, Kokkos::AUTO);
/// policy.set_scratch_size(level, Kokkos::PerTeam(net.team_scratch_bytes()));
/// Kokkos::parallel_for(policy, KOKKOS_LAMBDA(Policy::member_type const& team) {
///   auto const local = net.stage(team, level);  // by every thread of the team
///   int const first = team.league_rank() * tile, last = Kokkos::min(n, first + tile);
///   Kokkos::parallel_for(Kokkos::TeamThreadRange(team, first, last), [&](int i) {
///     local(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(y, i, Kokkos::ALL));
///   });
/// });
/// ```
template <class Architecture, class T, class MemorySpace>
struct Inference : InferenceCalls<Architecture, Inference<Architecture, T, MemorySpace>> {
  using value_type = T;
  using memory_space = MemorySpace;
  Kokkos::View<T const*, MemorySpace> parameters;
  Kokkos::View<T const*, MemorySpace> state;

  KOKKOS_DEFAULTED_FUNCTION Inference() = default;
  KOKKOS_INLINE_FUNCTION Inference(Kokkos::View<T const*, MemorySpace> parameters_,
                                   Kokkos::View<T const*, MemorySpace> state_)
      : parameters(parameters_), state(state_) {}

  KOKKOS_INLINE_FUNCTION T const* parameter_data() const { return parameters.data(); }
  KOKKOS_INLINE_FUNCTION T const* state_data() const { return state.data(); }

  /// Bytes of team scratch `stage` takes: the parameters and the state (T
  /// each, param_count + state_count values) and the alignment of their start,
  /// as Kokkos sizes a scratch View. Scratch your kernel allocates besides
  /// comes from the same level's allocator: add its size to this one.
  KOKKOS_INLINE_FUNCTION static constexpr std::size_t team_scratch_bytes() {
    return detail::TeamScratch<Architecture, T>::bytes;
  }

  /// Copies the parameters and state into `team`'s scratch memory at `level`
  /// (0: on-chip, fast and small; 1: larger, in the device's main memory),
  /// every thread of the team sharing the copy (TeamVectorRange), then
  /// waits for the whole team (team_barrier) and returns the team's
  /// StagedInference: the same call operators as this Inference, reading the
  /// staged weights. Call it from every thread of the team, outside any
  /// nested parallel loop, before the team's TeamThreadRange over its tile.
  ///
  /// The TeamPolicy must ask for the bytes at that level:
  /// `policy.set_scratch_size(level, Kokkos::PerTeam(net.team_scratch_bytes()))`.
  /// `Kokkos::TeamPolicy<Space>::scratch_size_max(level)` bounds what a level
  /// holds: at level 0, 32 KiB on host backends (where both levels are the
  /// same host memory) and the GPU's shared memory per block less about
  /// 24 KiB on CUDA; 80 MiB at level 1. A larger request makes the
  /// parallel_for throw std::runtime_error at launch ("Kokkos::parallel_for<
  /// ...>: Requested too much scratch memory on level 0"), before any team
  /// runs: a network whose weights do not fit level 0 goes to level 1. A
  /// policy that asks for fewer bytes than team_scratch_bytes(), or (on a GPU)
  /// at another level than the one given here, leaves stage without its
  /// block: the kernel aborts with a message naming team_scratch_bytes().
  template <class TeamMember>
  KOKKOS_INLINE_FUNCTION StagedInference<Architecture, T> stage(
      [[maybe_unused]] TeamMember const& team, [[maybe_unused]] int level) const {
    using Scratch = detail::TeamScratch<Architecture, T>;
    StagedInference<Architecture, T> out;
    if constexpr (Scratch::values > 0) {
      int const count = int(Scratch::values), params = int(Architecture::param_count);
      T const* const p = parameters.data();
      T const* const s = state.data();
      // From the scratch space team_scratch(level) returns, at its default level
      // (on host backends both levels are one block, reached as level 0).
      T* const block = static_cast<T*>(team.team_scratch(level).get_shmem_aligned(
          Scratch::values * sizeof(T), std::ptrdiff_t(Scratch::alignment)));
      if (block == nullptr)
        Kokkos::abort(
            "ktnn::Inference::stage: the team's scratch at this level is smaller than "
            "team_scratch_bytes(); give the TeamPolicy set_scratch_size(level, "
            "Kokkos::PerTeam(net.team_scratch_bytes() + your own)) at the level passed to stage");
      Kokkos::parallel_for(Kokkos::TeamVectorRange(team, count),
                           [=](int i) { block[i] = i < params ? p[i] : s[i - params]; });
      team.team_barrier();
      out.parameters = block;
      out.state = block + params;
    }
    return out;
  }
};

}  // namespace ktnn
