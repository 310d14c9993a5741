#pragma once
/// \file Data-parallel training over MPI: every rank holds the whole model
/// and the whole dataset, trains on its shard of each global batch, and the
/// ranks sum their gradients with one MPI_Allreduce per step, so p ranks
/// with a global batch B take the steps one process with batch B would.
///
/// Not in the umbrella header: including it needs <mpi.h> and linking MPI
/// (the CMake target ktnn::mpi, built with KTNN_ENABLE_MPI).
///
///   ktnn::mpi::Session session(argc, argv);          // MPI_Init / MPI_Finalize
///   Kokkos::ScopeGuard kokkos(argc, argv);
///   return session.run([&] {                         // an error ends every rank
///     ktnn::mpi::Communicator comm;                  // a duplicate of MPI_COMM_WORLD
///     ...                                            // same model seed, same data
///     ktnn::fit(model, loss, optimizer, loader, options, comm);
///     auto test_sums = ktnn::evaluate(model, loss, test, comm);
///   });
///
/// One step (DataParallel::step), on every rank:
///   1. gather its shard of global batch b (DataLoader::batch(b, rank, ranks):
///      the same seeded shuffle on every rank, the batch cut into runs that
///      differ by at most one sample), forward, the fused loss, then the
///      loss gradient times shard / B: a loss writes the gradient of its
///      mean over the rows it was given, so after the scaling the ranks'
///      gradients sum to the gradient of the mean over the global batch, as
///      one rank with batch B computes it (an empty shard contributes zero);
///   2. backward into the gradient arena;
///   3. an agreement: a small all-reduce of an error flag, the shard sizes and
///      the global batch size. If any rank threw in 1-2, every rank throws a
///      CollectiveError naming the first failing rank and its message, and
///      no rank is left waiting in the gradient all-reduce;
///   4. ONE MPI_Allreduce (sum) of the whole gradient arena, in place: the
///      arena's own pointer where MPI can read that memory (host memory, or
///      a CUDA- or ROCm-aware MPI library), else through a host buffer
///      allocated once;
///   5. the optimizer's step, unchanged: every rank applies the same summed
///      gradient to the same parameters, so the ranks stay identical.
/// The all-reduce is blocking and follows the whole backward pass: one
/// overlapped with the backward (per-layer MPI_Iallreduce) was measured and
/// did not pay on the development machine (docs/scaling.md).
///
/// What differs from one rank: the sums over a batch are taken in another
/// order (each rank sums its rows, then the all-reduce sums the ranks), so
/// the parameters agree to rounding, not bit for bit; layers that use batch
/// statistics (BatchNorm in training mode) see the shard's rows, not the
/// batch's (PyTorch's DistributedDataParallel without SyncBatchNorm), and
/// their running statistics are rank 0's, broadcast at every epoch's end;
/// Dropout's masks depend on a row's index within the shard, so the ranks'
/// masks repeat one another; CrossEntropy with class weights averages each
/// shard's weighted mean (weighted by the shard's size), which is not the
/// batch's weighted mean.
///
/// Errors, without hangs: every collective call here starts with an
/// agreement, and what a rank may throw before it (a file it cannot read, a
/// batch of the wrong size) is carried into that agreement, so all ranks
/// leave together with the same CollectiveError. An optimizer's error (its
/// options are checked in step()) comes after the gradient all-reduce: it is
/// held and raised at the next agreement (the next step, or the end of the
/// epoch in fit). An exception that escapes outside any agreement reaches
/// Session::run, which calls MPI_Abort: the other ranks cannot know of it.
///
/// The parts, under ktnn/parallel/mpi/: communicator.hpp (Communicator,
/// Session, CollectiveError, the agreement), arena.hpp (how arenas reach
/// MPI), replicas.hpp (broadcast, check_agreement, collective save and load),
/// data_parallel.hpp (DataParallel, DataParallelTraining), fit.hpp (the fit
/// and evaluate overloads).

#include <ktnn/parallel/mpi/arena.hpp>
#include <ktnn/parallel/mpi/communicator.hpp>
#include <ktnn/parallel/mpi/data_parallel.hpp>
#include <ktnn/parallel/mpi/fit.hpp>
#include <ktnn/parallel/mpi/replicas.hpp>
