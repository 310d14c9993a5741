#pragma once
/// \file DataParallel: one training step on this rank's shard of a global
/// batch, one agreement, one all-reduce of the gradient arena, the
/// optimizer's unchanged step (see ktnn/parallel/mpi.hpp for the whole
/// step); and DataParallelTraining, the policy fit runs its loop under on
/// each rank.

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/parallel/mpi/arena.hpp>
#include <ktnn/parallel/mpi/communicator.hpp>
#include <ktnn/parallel/mpi/replicas.hpp>
#include <ktnn/train/step.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <sstream>
#include <type_traits>
#include <utility>

namespace ktnn::mpi {

namespace detail {
template <class T>
KOKKOS_INLINE_FUNCTION void scale_range(T* KOKKOS_RESTRICT x, std::size_t begin, std::size_t end,
                                        T const factor) {
  for (std::size_t i = begin; i < end; ++i) x[i] *= factor;
}

/// x[i] *= factor over a range of i.
template <class T>
struct ScaleRange {
  T* x;
  T factor;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    scale_range(x, begin, end, factor);
  }
};

/// x[i] *= factor for i < n.
template <class ExecSpace, class T>
void scale(ExecSpace const& exec, T* x, std::size_t n, T factor) {
  ops::for_each_range(exec, "ktnn::mpi::scale_loss_gradient", n,
                      ScaleRange<T>{.x = x, .factor = factor});
}

/// Rows of a batch given as a Tensor or a View.
template <class X>
std::size_t rows_of(X const& x) {
  if constexpr (requires { x.view(); })
    return x.view().extent(0);
  else
    return x.extent(0);
}
}  // namespace detail

struct DataParallelOptions {
  Transport transport = Transport::automatic;
};

/// Time spent communicating by a DataParallel's steps.
struct CommunicationStats {
  std::size_t steps = 0;
  /// In the agreement before each gradient all-reduce; it waits for the
  /// slowest rank, so it holds the ranks' imbalance, and leaves the
  /// all-reduce after it to start together.
  double agreement_seconds = 0;
  /// In the gradient all-reduces, staging copies included.
  double allreduce_seconds = 0;
  /// The fastest of them: the transfer itself, where the mean also holds
  /// the times a rank was not scheduled (other work on its cores).
  double allreduce_min_seconds = 0;
  std::size_t bytes_per_allreduce = 0;
  double seconds_per_allreduce() const { return steps ? allreduce_seconds / double(steps) : 0.0; }
};

/// Data-parallel training of one model on a communicator: makes the ranks'
/// models rank 0's when made (broadcast), then runs steps that each end with
/// one all-reduce of the gradient arena. Keeps a reference to the
/// communicator and the model; both must outlive it.
template <class Model>
class DataParallel {
 public:
  using model_type = Model;
  using value_type = typename Model::value_type;
  using execution_space = typename Model::execution_space;
  using memory_space = typename Model::memory_space;
  using sums_view = Kokkos::View<LossSums, memory_space>;

  /// Collective: broadcasts rank 0's parameters and state (see broadcast()).
  DataParallel(Communicator const& comm, Model& model, DataParallelOptions const& options = {})
      : comm_(&comm), model_(&model), channel_(options.transport, Model::param_count) {
    stats_.bytes_per_allreduce = Model::param_count * sizeof(value_type);
    broadcast(comm, model, options.transport);
  }

  Communicator const& communicator() const { return *comm_; }
  Model& model() const { return *model_; }
  /// Whether the arenas go to MPI through a host buffer.
  bool staged() const { return channel_.staged(); }
  CommunicationStats const& stats() const { return stats_; }
  void reset_stats() { stats_ = {.bytes_per_allreduce = stats_.bytes_per_allreduce}; }

  /// One step on this rank's shard (`x`, `y`: a Tensor or View of any
  /// layout, and the targets; it may have no rows) of a global batch of
  /// `global_batch` samples: the ranks' shards must add up to it. Loss sums
  /// of the shard go to `sums`. Collective.
  template <class Loss, class Optimizer, class X, class Y>
  sums_view step(Loss const& loss, Optimizer& optimizer, X const& x, Y const& y,
                 std::size_t global_batch, sums_view const& sums) {
    static_assert(check_optimizer_for<Optimizer, Model>(),
                  "ktnn::mpi::DataParallel::step: the optimizer does not meet the "
                  "ktnn::Optimizer protocol for this model (see above)");
    Kokkos::Profiling::ScopedRegion region("ktnn::mpi::train_step");
    std::exception_ptr error;
    std::size_t local = 0;
    try {
      local = detail::rows_of(x);
      local_gradient(loss, x, y, local, global_batch, sums);
    } catch (...) {
      error = std::current_exception();
    }
    finish(optimizer, error, local, global_batch);
    return sums;
  }
  template <class Loss, class Optimizer, class X, class Y>
  sums_view step(Loss const& loss, Optimizer& optimizer, X const& x, Y const& y,
                 std::size_t global_batch) {
    return step(loss, optimizer, x, y, global_batch, model_->loss_sums());
  }

  /// One step on this rank's shard of batch `b` of `loader`'s epoch (every
  /// rank's loader over the same dataset with the same options, at the same
  /// epoch: the same shuffle). Collective.
  template <class Loss, class Optimizer, class Loader>
  sums_view step(Loss const& loss, Optimizer& optimizer, Loader& loader, int b,
                 sums_view const& sums) {
    static_assert(check_optimizer_for<Optimizer, Model>(),
                  "ktnn::mpi::DataParallel::step: the optimizer does not meet the "
                  "ktnn::Optimizer protocol for this model (see above)");
    Kokkos::Profiling::ScopedRegion region("ktnn::mpi::train_step");
    std::exception_ptr error;
    std::size_t local = 0, global = 0;
    try {
      global = loader.batch_samples(b);
      auto [x, y] = loader.batch(b, comm_->rank(), comm_->size());
      local = detail::rows_of(x);
      local_gradient(loss, x, y, local, global, sums);
    } catch (...) {
      error = std::current_exception();
    }
    finish(optimizer, error, local, global);
    return sums;
  }
  template <class Loss, class Optimizer, class Loader>
  sums_view step(Loss const& loss, Optimizer& optimizer, Loader& loader, int b) {
    return step(loss, optimizer, loader, b, model_->loss_sums());
  }

  /// For a step of one's own: once every rank has written its gradient
  /// (scaled so that the ranks' sum is the gradient wanted), agrees and sums
  /// the gradient arena over the ranks. `error` is what this rank's own work
  /// threw (std::current_exception() in a catch): with one, every rank
  /// throws. Collective.
  void allreduce_gradients(std::exception_ptr error = nullptr) {
    if (!error && pending_) error = std::exchange(pending_, nullptr);
    comm_->agree("ktnn::mpi::allreduce_gradients", error);
    channel_.allreduce(*comm_, model_->execution(), model_->gradients());
  }

  /// Runs `f` (which must not communicate), then agrees, raising an error
  /// held from an optimizer step as well. Collective.
  template <class F>
  std::invoke_result_t<F&> run(char const* operation, F&& f) {
    return comm_->run(operation, [&]() -> std::invoke_result_t<F&> {
      if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
      return f();
    });
  }

  /// Where fit's epoch ends: raises a held optimizer error, gives every rank
  /// rank 0's state (running statistics), checks that the ranks agree.
  /// Collective.
  void end_epoch() {
    run("ktnn::mpi::DataParallel::end_epoch", [] {});
    if constexpr (Model::state_count > 0)
      channel_.broadcast(*comm_, model_->execution(), model_->state(), 0);
    check_agreement(*comm_, *model_);
  }

  /// Checks that every rank's loader batches the same data the same way
  /// (dataset size, batch size, shuffle, seed, drop_last). Collective.
  template <class Loader>
  void check_loader(Loader const& loader) const {
    auto const& o = loader.options();
    std::uint64_t hash = random::mix64(loader.dataset().size());
    for (std::uint64_t v : {std::uint64_t(o.batch_size), std::uint64_t(o.shuffle), o.seed,
                            std::uint64_t(o.drop_last)})
      hash = random::mix64(hash ^ v);
    comm_->require_same("ktnn::fit", hash,
                        "the data loader (dataset size, batch size, shuffle, seed, drop_last)");
  }

 private:
  using clock = std::chrono::steady_clock;

  template <class Loss, class X, class Y>
  void local_gradient(Loss const& loss, X const& x, Y const& y, std::size_t local,
                      std::size_t global, sums_view const& sums) {
    auto const& exec = model_->execution();
    if (global == 0) ktnn::detail::fail("ktnn::mpi::train_step", "the global batch has no samples");
    if (local > global)
      ktnn::detail::fail("ktnn::mpi::train_step", "this rank's shard has ", local,
                         " samples, more than the global batch of ", global);
    if (local == 0) {  // nothing to learn from; still part of the sum
      model_->zero_grad();
      Kokkos::deep_copy(exec, sums, LossSums{});
      return;
    }
    auto const prediction = model_->forward(x);
    compute_loss(exec, loss, prediction, y, sums, model_->output_gradient());
    // The loss wrote d(mean over the shard)/d(output); the ranks' sum must
    // be d(mean over the global batch)/d(output).
    if (local != global)
      detail::scale(exec, model_->output_gradient().data(),
                    local * std::size_t(Model::out_features),
                    value_type(double(local) / double(global)));
    model_->backward(false, Accumulate::no);
  }

  template <class Optimizer>
  void finish(Optimizer& optimizer, std::exception_ptr error, std::size_t local,
              std::size_t global) {
    if (!error && pending_) error = std::exchange(pending_, nullptr);
    auto const start = clock::now();
    auto const all =
        comm_->agree("ktnn::mpi::train_step", error, std::int64_t(local), std::int64_t(global));
    if (all.same_min != all.same_max) {
      std::ostringstream text;
      text << "ktnn::mpi::train_step: the ranks disagree on the global batch size (from "
           << all.same_min << " to " << all.same_max << " samples)";
      throw CollectiveError(text.str(), -1, comm_->size());
    }
    if (all.sum != all.same_min) {
      std::ostringstream text;
      text << "ktnn::mpi::train_step: the ranks' shards hold " << all.sum
           << " samples in all, the global batch " << all.same_min
           << ": each sample of a global batch must be on exactly one rank";
      throw CollectiveError(text.str(), -1, comm_->size());
    }
    auto const agreed = clock::now();
    channel_.allreduce(*comm_, model_->execution(), model_->gradients());
    auto const reduced = clock::now();
    double const seconds = std::chrono::duration<double>(reduced - agreed).count();
    stats_.allreduce_min_seconds =
        stats_.steps == 0 ? seconds : std::min(stats_.allreduce_min_seconds, seconds);
    stats_.steps += 1;
    stats_.agreement_seconds += std::chrono::duration<double>(agreed - start).count();
    stats_.allreduce_seconds += seconds;
    // Every rank applies the same gradient; an error here is raised at the
    // next agreement (it cannot be agreed on now without a second one).
    try {
      optimizer.step(model_->parameters(), model_->gradients());
    } catch (...) {
      pending_ = std::current_exception();
    }
  }

  Communicator const* comm_;
  Model* model_;
  detail::ArenaChannel<value_type, execution_space> channel_;
  CommunicationStats stats_;
  std::exception_ptr pending_;
};

/// fit's training policy (ktnn::TrainingPolicy, train/policy.hpp) as one
/// rank of a data-parallel run: each step trains this rank's shard and sums
/// the gradients over the ranks, errors are agreed on, rank 0 prints and
/// writes, the loss sums are gathered, each epoch ends with rank 0's state
/// on every rank and a check that the ranks agree.
template <class Model>
struct DataParallelTraining {
  DataParallel<Model>& parallel;

  template <class F>
  decltype(auto) guard(char const* operation, F&& f) {
    return parallel.run(operation, std::forward<F>(f));
  }
  bool writes() const { return parallel.communicator().root(); }
  template <class Loader>
  int batch_rows(Loader const& loader) const {
    std::size_t const ranks = std::size_t(parallel.communicator().size());
    return int(std::max<std::size_t>(1, (std::size_t(loader.batch_size()) + ranks - 1) / ranks));
  }
  template <class Loss, class Optimizer, class Loader>
  void step(Model&, Loss const& loss, Optimizer& optimizer, Loader& loader, int b,
            Kokkos::View<LossSums, typename Model::memory_space> const& sums) {
    parallel.step(loss, optimizer, loader, b, sums);
  }
  LossSums combine(LossSums const& sums) const { return parallel.communicator().combine(sums); }
  void end_epoch(Model&) { parallel.end_epoch(); }
};

}  // namespace ktnn::mpi
