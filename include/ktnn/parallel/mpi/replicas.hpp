#pragma once
/// \file The ranks' replicas of one model: making them rank 0's
/// (broadcast), checking that they hold the same bits (check_agreement), and
/// saving and loading them collectively (rank 0 writes, every rank reads,
/// then the ranks check that they agree).

#include <ktnn/core/profiling.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/io/checkpoint.hpp>
#include <ktnn/io/model_file.hpp>
#include <ktnn/parallel/mpi/arena.hpp>
#include <ktnn/parallel/mpi/communicator.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace ktnn::mpi {

namespace detail {
inline std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

/// A hash of element i's (index, bits), summed by the reduction mod 2^64, so
/// the order of the reduction does not matter.
template <class T>
struct BitsChecksum {
  using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  static_assert(sizeof(T) == sizeof(Bits), "ktnn::mpi: arenas of float or double only");
  T const* data;
  KOKKOS_FUNCTION void operator()(std::int64_t i, std::uint64_t& s) const {
    s += random::bits(std::uint64_t(Kokkos::bit_cast<Bits>(data[i])), 0x636865636b73756dULL,
                      std::uint64_t(i));
  }
};

/// A checksum of the bits of data[0, n) (see BitsChecksum).
template <class ExecSpace, class T>
std::uint64_t checksum(ExecSpace const& exec, T const* data, std::size_t n) {
  std::uint64_t sum = 0;
  Kokkos::parallel_reduce(
      "ktnn::mpi::checksum",
      Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, std::int64_t(n)),
      BitsChecksum<T>{.data = data}, sum);
  return sum;
}

template <class Model>
std::uint64_t model_checksum(Model const& model) {
  auto const& exec = model.execution();
  auto const params = checksum(exec, model.parameters().data(), model.parameters().extent(0));
  auto const state = checksum(exec, model.state().data(), model.state().extent(0));
  return random::mix64(params ^ random::mix64(state + 1));
}

/// What two ranks' models must share to exchange arenas: architecture,
/// scalar type and arena sizes.
template <class Model>
std::uint64_t model_signature() {
  std::uint64_t hash = fnv1a(Model::architecture::name());
  hash = random::mix64(hash ^ sizeof(typename Model::value_type));
  hash = random::mix64(hash ^ Model::param_count);
  return random::mix64(hash ^ Model::state_count);
}

}  // namespace detail

/// Checks that every rank holds the same parameters and state, bit for bit
/// (a checksum of each rank's arenas, agreed on); when not, every rank throws
/// a CollectiveError naming the ranks that differ from rank 0. Collective.
template <class Model>
void check_agreement(Communicator const& comm, Model const& model) {
  Kokkos::Profiling::ScopedRegion region("ktnn::mpi::check_agreement");
  comm.require_same("ktnn::mpi::check_agreement", detail::model_checksum(model),
                    "the parameters and state (a checksum of their bits)");
}

/// Gives every rank rank 0's parameters and state, then checks that the
/// ranks agree. First checks that the ranks' models have one architecture,
/// scalar type and arena sizes (a CollectiveError naming the ranks that
/// differ, before anything is sent). Collective.
template <class Model>
void broadcast(Communicator const& comm, Model& model, Transport transport = Transport::automatic) {
  using T = typename Model::value_type;
  Kokkos::Profiling::ScopedRegion region("ktnn::mpi::broadcast");
  comm.require_same("ktnn::mpi::broadcast", detail::model_signature<Model>(),
                    "the model (architecture, scalar type, arena sizes)");
  detail::ArenaChannel<T, typename Model::execution_space> channel(
      transport, std::max(Model::param_count, Model::state_count));
  channel.broadcast(comm, model.execution(), model.parameters(), 0);
  channel.broadcast(comm, model.execution(), model.state(), 0);
  check_agreement(comm, model);
}

/// Writes the model (ktnn::save: safetensors under PyTorch's names) from
/// rank 0 alone; if that fails, every rank throws. Collective.
template <class Model>
void save(Communicator const& comm, Model const& model, std::string const& path,
          SaveOptions const& options = {}) {
  comm.run("ktnn::mpi::save", [&] {
    if (comm.root()) ktnn::save(model, path, options);
  });
}

/// Every rank reads `path` (ktnn::load) into its model, then the ranks check
/// that they agree; a rank that cannot read it makes every rank throw.
/// Collective.
template <class Model>
void load(Communicator const& comm, Model& model, std::string const& path,
          LoadOptions const& options = {}) {
  comm.run("ktnn::mpi::load", [&] { ktnn::load(model, path, options); });
  check_agreement(comm, model);
}

/// Writes a training checkpoint (ktnn::save_checkpoint) from rank 0 alone:
/// the ranks of a data-parallel run hold the same model and optimizer state
/// after every step. If the write fails, every rank throws. Collective.
template <class Model, class Optimizer, class... Extras>
void save_checkpoint(Communicator const& comm, std::string const& path, Model const& model,
                     Optimizer const& optimizer, TrainingProgress const& progress,
                     Extras const&... extras) {
  comm.run("ktnn::mpi::save_checkpoint", [&] {
    if (comm.root()) ktnn::save_checkpoint(path, model, optimizer, progress, extras...);
  });
}

/// Every rank reads the checkpoint `path` (ktnn::load_checkpoint) into its
/// model, optimizer and extras, then the ranks check that their models
/// agree; a rank that cannot read it makes every rank throw. Returns the
/// progress. Collective.
template <class Model, class Optimizer, class... Extras>
TrainingProgress load_checkpoint(Communicator const& comm, std::string const& path, Model& model,
                                 Optimizer& optimizer, Extras&... extras) {
  auto const progress = comm.run("ktnn::mpi::load_checkpoint", [&] {
    return ktnn::load_checkpoint(path, model, optimizer, extras...);
  });
  check_agreement(comm, model);
  return progress;
}

}  // namespace ktnn::mpi
