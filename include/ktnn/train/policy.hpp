#pragma once
/// \file The training policy of fit: who runs each step, where errors are
/// agreed on, who prints, how an epoch's loss sums are combined.
///
/// fit runs its loop (ktnn::fit_with, train/fit.hpp) under LocalTraining:
/// one process, the loader's whole batch per step. A data-parallel run
/// (ktnn::mpi::DataParallelTraining, parallel/mpi.hpp) runs the same loop
/// under its own policy. A policy P for a run of Model, Loss, Optimizer and
/// Loader has
///
///   guard(operation, f)   runs f (a callable taking nothing); a distributed
///                         policy makes every rank throw when one did, so no
///                         rank is left waiting
///   writes()              whether this process prints and writes the CSV
///   batch_rows(loader)    the most rows one of its steps takes (fit reserves
///                         the model for it before training)
///   step(model, loss, optimizer, loader, b, sums)
///                         one training step on batch b of the loader's
///                         epoch, its loss sums into `sums` (a device scalar)
///   combine(sums)         the epoch's loss sums over every process
///   end_epoch(model)      after the sums, before the callbacks
///
/// check_training_policy<P, Model, Loss, Optimizer, Loader>() checks them one
/// at a time, so the compiler's first error names the member that is missing.

#include <ktnn/losses/loss.hpp>
#include <ktnn/train/step.hpp>

#include <Kokkos_Core.hpp>

#include <concepts>
#include <utility>

namespace ktnn {

/// One requirement of the training policy each, so check_training_policy can
/// say which is missing.
namespace detail::training_policy_requirements {
/// What guard is probed with: a callable that takes and returns nothing.
struct Work {
  void operator()() const {}
};

template <class P>
concept guard = requires(P& policy, char const* operation) { policy.guard(operation, Work{}); };
template <class P>
concept writes = requires(P& policy) {
  { policy.writes() } -> std::convertible_to<bool>;
};
template <class P, class Loader>
concept batch_rows = requires(P& policy, Loader const& loader) {
  { policy.batch_rows(loader) } -> std::convertible_to<int>;
};
template <class P, class Model, class Loss, class Optimizer, class Loader>
concept step =
    requires(P& policy, Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader,
             Kokkos::View<LossSums, typename Model::memory_space> const& sums) {
      policy.step(model, loss, optimizer, loader, 0, sums);
    };
template <class P>
concept combine = requires(P& policy, LossSums const& sums) {
  { policy.combine(sums) } -> std::convertible_to<LossSums>;
};
template <class P, class Model>
concept end_epoch = requires(P& policy, Model& model) { policy.end_epoch(model); };
}  // namespace detail::training_policy_requirements

/// A policy fit's loop can run under, for a run of these Model, Loss,
/// Optimizer and Loader (see the file comment).
template <class P, class Model, class Loss, class Optimizer, class Loader>
concept TrainingPolicy =
    detail::training_policy_requirements::guard<P> &&
    detail::training_policy_requirements::writes<P> &&
    detail::training_policy_requirements::batch_rows<P, Loader> &&
    detail::training_policy_requirements::step<P, Model, Loss, Optimizer, Loader> &&
    detail::training_policy_requirements::combine<P> &&
    detail::training_policy_requirements::end_epoch<P, Model>;

/// Checks the policy one requirement at a time, so the compiler's first
/// error says which member is missing (and names P in its instantiation).
template <class P, class Model, class Loss, class Optimizer, class Loader>
constexpr bool check_training_policy() {
  namespace r = detail::training_policy_requirements;
  static_assert(r::guard<P>,
                "ktnn::TrainingPolicy: missing `template <class F> decltype(auto) guard(char "
                "const* operation, F&& f)` (runs f)");
  static_assert(r::writes<P>, "ktnn::TrainingPolicy: missing `bool writes()`");
  static_assert(r::batch_rows<P, Loader>,
                "ktnn::TrainingPolicy: missing `int batch_rows(Loader const&)` for this loader");
  static_assert(r::step<P, Model, Loss, Optimizer, Loader>,
                "ktnn::TrainingPolicy: missing `void step(Model&, Loss const&, Optimizer&, "
                "Loader&, int batch, Kokkos::View<LossSums, memory_space> const& sums)` for "
                "this model, loss, optimizer and loader");
  static_assert(r::combine<P>, "ktnn::TrainingPolicy: missing `LossSums combine(LossSums const&)`");
  static_assert(r::end_epoch<P, Model>,
                "ktnn::TrainingPolicy: missing `void end_epoch(Model&)` for this model");
  return TrainingPolicy<P, Model, Loss, Optimizer, Loader>;
}

/// fit's own policy: one process trains every batch whole, prints and writes.
struct LocalTraining {
  template <class F>
  decltype(auto) guard(char const*, F&& f) {
    return std::forward<F>(f)();
  }
  bool writes() const { return true; }
  template <class Loader>
  int batch_rows(Loader const& loader) const {
    return loader.batch_size();
  }
  template <class Model, class Loss, class Optimizer, class Loader>
  void step(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader, int b,
            Kokkos::View<LossSums, typename Model::memory_space> const& sums) {
    auto [x, y] = loader.batch(b);
    train_step(model, loss, optimizer, x, y, sums);
  }
  LossSums combine(LossSums const& sums) const { return sums; }
  template <class Model>
  void end_epoch(Model&) {}
};

}  // namespace ktnn
