#pragma once
/// \file fit and evaluate over the ranks of a communicator: fit's loop
/// (ktnn::fit_with) under mpi::DataParallelTraining, and each rank
/// evaluating its share of the rows (ktnn::evaluate_rows).

#include <ktnn/core/profiling.hpp>
#include <ktnn/data/dataset.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/parallel/mpi/communicator.hpp>
#include <ktnn/parallel/mpi/data_parallel.hpp>
#include <ktnn/train/fit.hpp>

#include <Kokkos_Core.hpp>

#include <vector>

namespace ktnn {

/// fit as one rank of a data-parallel run: every rank calls it with a loader
/// over the same dataset with the same options; each trains its shard of
/// every batch (the loader's batch size is the global batch). The metrics
/// (loss, accuracy, samples) are the whole run's, on every rank; only rank 0
/// prints (options.out) and writes options.csv_path. The callbacks run on
/// every rank (so they may call collectives, such as evaluate with the
/// communicator). At each epoch's end the ranks take rank 0's state and
/// check that their parameters agree. An error on any rank stops every rank
/// with a mpi::CollectiveError naming it. Collective.
template <class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit(mpi::DataParallel<Model>& parallel, Loss const& loss,
                              Optimizer& optimizer, Loader& loader,
                              FitOptions const& options = {}) {
  parallel.check_loader(loader);
  mpi::DataParallelTraining<Model> policy{parallel};
  return fit_with(policy, parallel.model(), loss, optimizer, loader, options);
}

/// The same, starting with rank 0's model on every rank (mpi::broadcast).
template <class Model, class Loss, class Optimizer, class Loader>
std::vector<EpochMetrics> fit(Model& model, Loss const& loss, Optimizer& optimizer, Loader& loader,
                              FitOptions const& options, mpi::Communicator const& comm) {
  mpi::DataParallel<Model> parallel(comm, model);
  return fit(parallel, loss, optimizer, loader, options);
}

/// evaluate over the ranks: each rank evaluates its contiguous share of
/// `data` (every rank holds the same dataset and model); returns the sums
/// of the whole dataset on every rank. Collective.
template <class Model, class Loss, class Dataset>
LossSums evaluate(Model& model, Loss const& loss, Dataset const& data,
                  mpi::Communicator const& comm, int batch_size = 1024) {
  Kokkos::Profiling::ScopedRegion region("ktnn::evaluate");
  comm.require_same("ktnn::evaluate", data.size(), "the dataset's size");
  auto const rows = data::shard_range(data.size(), comm.rank(), comm.size());
  auto const local = comm.run("ktnn::evaluate", [&] {
    return evaluate_rows(model, loss, data, rows.first, rows.second, batch_size);
  });
  return comm.combine(local);
}

}  // namespace ktnn
