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

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/data/dataset.hpp>
#include <ktnn/io/checkpoint.hpp>
#include <ktnn/io/model_file.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/train/fit.hpp>
#include <ktnn/train/step.hpp>

#include <Kokkos_Core.hpp>

#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI's MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn::mpi {

/// Thrown on every rank of a communicator at once, by the same collective
/// call, so no rank is left waiting: the message (the same on every rank)
/// names the operation, the first rank that failed and what it threw.
class CollectiveError : public Error {
 public:
  CollectiveError(std::string const& message, int failed_rank, int failed_ranks)
      : Error(message), failed_rank_(failed_rank), failed_ranks_(failed_ranks) {}
  /// The lowest rank that failed; -1 when the ranks disagree and none is to
  /// blame alone (different global batch sizes, say).
  int failed_rank() const { return failed_rank_; }
  /// How many ranks failed (or disagree with rank 0).
  int failed_ranks() const { return failed_ranks_; }

 private:
  int failed_rank_;
  int failed_ranks_;
};

namespace detail {
inline void check(int rc, char const* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  ktnn::detail::fail("ktnn::mpi", call, " failed: ", std::string(text, std::size_t(length)));
}

template <class T>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return MPI_UINT64_T;
  else
    static_assert(sizeof(T) == 0, "ktnn::mpi: arenas of float or double only");
}

/// What an agreement reduces, one per rank.
struct Agreement {
  std::int64_t failed = 0;        ///< ranks that failed (summed)
  std::int64_t first_failed = 0;  ///< the lowest of them (min)
  std::int64_t sum = 0;           ///< a value summed over the ranks
  std::int64_t same_min = 0;      ///< a value every rank must hold alike:
  std::int64_t same_max = 0;      ///< its min and max
};
static_assert(sizeof(Agreement) == 5 * sizeof(std::int64_t));

inline void reduce_agreement(void* in, void* inout, int* length, MPI_Datatype*) {
  auto const* a = static_cast<Agreement const*>(in);
  auto* b = static_cast<Agreement*>(inout);
  for (int i = 0; i < *length; ++i) {
    b[i].failed += a[i].failed;
    b[i].first_failed = std::min(b[i].first_failed, a[i].first_failed);
    b[i].sum += a[i].sum;
    b[i].same_min = std::min(b[i].same_min, a[i].same_min);
    b[i].same_max = std::max(b[i].same_max, a[i].same_max);
  }
}

inline std::string describe(std::exception_ptr const& error) {
  try {
    std::rethrow_exception(error);
  } catch (std::exception const& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

inline std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

/// The bits of a 64-bit value as int64 (an agreement carries int64).
inline std::int64_t as_signed(std::uint64_t value) {
  std::int64_t out;
  static_assert(sizeof out == sizeof value);
  std::memcpy(&out, &value, sizeof out);
  return out;
}

// MPI counts are int: a longer buffer goes in pieces of this many elements.
inline constexpr std::size_t max_count = std::size_t(INT_MAX);
}  // namespace detail

/// An MPI communicator for ktnn: a duplicate of the caller's (MPI_COMM_WORLD
/// by default), so ktnn's collectives never match the program's own; freed
/// when this object goes (before MPI_Finalize, as MPI requires). Move-only.
/// Every member that communicates is collective: call it on every rank, in
/// the same order.
class Communicator {
 public:
  using Agreement = detail::Agreement;

  /// Collective (MPI_Comm_dup). Throws ktnn::Error when MPI is not
  /// initialized.
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
      ktnn::detail::fail("ktnn::mpi::Communicator",
                         "MPI is not initialized (or already finalized): make a "
                         "ktnn::mpi::Session, or call MPI_Init, first");
    detail::check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    detail::check(MPI_Type_contiguous(5, MPI_INT64_T, &agreement_type_), "MPI_Type_contiguous");
    detail::check(MPI_Type_commit(&agreement_type_), "MPI_Type_commit");
    detail::check(MPI_Op_create(&detail::reduce_agreement, 1, &agreement_op_), "MPI_Op_create");
  }
  ~Communicator() { release(); }
  Communicator(Communicator&& other) noexcept { take(other); }
  Communicator& operator=(Communicator&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  Communicator(Communicator const&) = delete;
  Communicator& operator=(Communicator const&) = delete;

  MPI_Comm native() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank 0: the one that prints, writes files and whose model the others
  /// take.
  bool root() const { return rank_ == 0; }

  /// The agreement point. Every rank calls it with what it threw since the
  /// last one (`error`, or none); if any rank threw, every rank throws the
  /// same CollectiveError, naming `operation`, the first failing rank and its
  /// message. A CollectiveError as `error` is rethrown as it is, without
  /// communicating: every rank already threw it. Otherwise returns the sum of
  /// `sum` over the ranks and the min and max of `same`.
  Agreement agree(char const* operation, std::exception_ptr const& error, std::int64_t sum = 0,
                  std::int64_t same = 0) const {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (CollectiveError const&) {
        throw;
      } catch (...) {
      }
    }
    Agreement mine{error ? 1 : 0, error ? rank_ : std::numeric_limits<std::int64_t>::max(), sum,
                   same, same};
    Agreement all;
    detail::check(MPI_Allreduce(&mine, &all, 1, agreement_type_, agreement_op_, comm_),
                  "MPI_Allreduce");
    if (all.failed == 0) return all;
    // The first failing rank's message reaches every rank.
    int const root = int(all.first_failed);
    std::string message = rank_ == root ? detail::describe(error) : std::string();
    std::int64_t length = std::int64_t(std::min<std::size_t>(message.size(), 1 << 16));
    detail::check(MPI_Bcast(&length, 1, MPI_INT64_T, root, comm_), "MPI_Bcast");
    message.resize(std::size_t(length));
    detail::check(MPI_Bcast(message.data(), int(length), MPI_CHAR, root, comm_), "MPI_Bcast");
    std::ostringstream text;
    text << operation << ": ";
    if (all.failed == 1)
      text << "rank " << root << " of " << size_ << " failed: ";
    else
      text << all.failed << " of " << size_ << " ranks failed, the first rank " << root << ": ";
    text << message;
    throw CollectiveError(text.str(), root, int(all.failed));
  }

  /// Runs `f` on this rank, then agrees: returns f's result, or every rank
  /// throws when f threw on any. `f` itself must not communicate.
  template <class F>
  std::invoke_result_t<F&> run(char const* operation, F&& f) const {
    using R = std::invoke_result_t<F&>;
    std::exception_ptr error;
    if constexpr (std::is_void_v<R>) {
      try {
        f();
      } catch (...) {
        error = std::current_exception();
      }
      agree(operation, error);
    } else {
      std::optional<R> result;
      try {
        result.emplace(f());
      } catch (...) {
        error = std::current_exception();
      }
      agree(operation, error);
      return std::move(*result);
    }
  }

  /// Agrees that every rank holds the same `value`; when not, every rank
  /// throws a CollectiveError naming the ranks whose `what` differs from
  /// rank 0's.
  void require_same(char const* operation, std::uint64_t value, std::string_view what) const {
    auto const all = agree(operation, nullptr, 0, detail::as_signed(value));
    if (all.same_min == all.same_max) return;
    auto const values = allgather(value);
    std::vector<int> differ;
    for (int r = 1; r < size_; ++r)
      if (values[std::size_t(r)] != values[0]) differ.push_back(r);
    std::ostringstream text;
    text << operation << ": " << what << " of rank" << (differ.size() > 1 ? "s " : " ");
    for (std::size_t i = 0; i < differ.size(); ++i) text << (i ? ", " : "") << differ[i];
    text << " of " << size_ << (differ.size() > 1 ? " differ" : " differs") << " from rank 0's";
    throw CollectiveError(text.str(), differ.empty() ? -1 : differ.front(), int(differ.size()));
  }

  /// The loss sums of every rank, added in rank order (the same bits on every
  /// rank).
  LossSums combine(LossSums const& local) const {
    static_assert(sizeof(LossSums) == 5 * sizeof(double) && std::is_trivially_copyable_v<LossSums>);
    std::vector<LossSums> all(static_cast<std::size_t>(size_));
    detail::check(MPI_Allgather(&local, 5, MPI_DOUBLE, all.data(), 5, MPI_DOUBLE, comm_),
                  "MPI_Allgather");
    LossSums total;
    for (auto const& sums : all) total += sums;
    return total;
  }

  /// Every rank's `value`, by rank.
  std::vector<std::uint64_t> allgather(std::uint64_t value) const {
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    detail::check(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_),
                  "MPI_Allgather");
    return all;
  }

  /// data[0, n) summed over the ranks, in place (pointers MPI can read).
  template <class T>
  void allreduce_sum(T* data, std::size_t n) const {
    for (std::size_t done = 0; done < n; done += detail::max_count)
      detail::check(
          MPI_Allreduce(MPI_IN_PLACE, data + done, int(std::min(detail::max_count, n - done)),
                        detail::datatype<T>(), MPI_SUM, comm_),
          "MPI_Allreduce");
  }

  /// data[0, n) of rank `root` on every rank.
  template <class T>
  void broadcast(T* data, std::size_t n, int root = 0) const {
    for (std::size_t done = 0; done < n; done += detail::max_count)
      detail::check(MPI_Bcast(data + done, int(std::min(detail::max_count, n - done)),
                              detail::datatype<T>(), root, comm_),
                    "MPI_Bcast");
  }

  void barrier() const { detail::check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  void take(Communicator& other) {
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    agreement_type_ = std::exchange(other.agreement_type_, MPI_DATATYPE_NULL);
    agreement_op_ = std::exchange(other.agreement_op_, MPI_OP_NULL);
    rank_ = other.rank_;
    size_ = other.size_;
  }
  void release() noexcept {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (agreement_op_ != MPI_OP_NULL) MPI_Op_free(&agreement_op_);
    if (agreement_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&agreement_type_);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Datatype agreement_type_ = MPI_DATATYPE_NULL;
  MPI_Op agreement_op_ = MPI_OP_NULL;
  int rank_ = 0;
  int size_ = 1;
};

/// MPI for a program's lifetime: MPI_Init_thread (MPI_THREAD_FUNNELED: only
/// the main thread calls MPI) unless MPI is initialized already, and
/// MPI_Finalize at the end if this object initialized it. Make it before
/// Kokkos (Kokkos::ScopeGuard) and run the program in run().
class Session {
 public:
  Session(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided),
                    "MPI_Init_thread");
      owner_ = true;
    }
  }
  ~Session() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }
  Session(Session const&) = delete;
  Session& operator=(Session const&) = delete;

  /// Runs the program `body` (returning void or an exit status) and returns
  /// its exit status. A CollectiveError (every rank threw it) is printed with
  /// the rank to stderr and gives 1 on every rank, which then finalize as
  /// usual. Any other exception escaping `body` is known to this rank alone,
  /// while the others may wait for it in a collective: it is printed, and
  /// the job is ended with MPI_Abort (the last resort).
  template <class F>
  int run(F&& body) noexcept {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        body();
        return 0;
      } else {
        return int(body());
      }
    } catch (CollectiveError const& e) {
      say("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + e.what() + "\n");
      return 1;
    } catch (std::exception const& e) {
      abort(rank, size, e.what());
    } catch (...) {
      abort(rank, size, "an exception that is not a std::exception");
    }
    return 1;
  }

 private:
  /// One write of the whole text, so that the lines of two ranks sharing a
  /// terminal are less likely to interleave.
  static void say(std::string const& text) noexcept {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }
  static void abort(int rank, int size, char const* what) noexcept {
    try {
      std::string const r = std::to_string(rank);
      say("rank " + r + " of " + std::to_string(size) + ": " + what +
          "\nktnn::mpi::Session: rank " + r +
          " failed outside any agreement point, so the other ranks cannot know; ending the job "
          "with MPI_Abort\n");
    } catch (...) {
    }
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  }

  bool owner_ = false;
};

/// How arenas in a memory space the host cannot read reach MPI.
enum class Transport {
  automatic,  ///< the arena's pointer where MPI can read it (host memory, or
              ///< a CUDA- or ROCm-aware MPI, asked at run time), else staged
  direct,     ///< always the arena's pointer (an MPI you know reads it)
  staged      ///< always through a host buffer allocated once
};

/// Whether this MPI library takes pointers to CUDA device memory, asked at
/// run time (Open MPI's MPIX_Query_cuda_support, MPICH's
/// MPIX_GPU_query_support); false where the library cannot say.
inline bool cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT)
  return MPIX_Query_cuda_support() == 1;
#elif defined(MPICH_NUMVERSION) && MPICH_NUMVERSION >= 40000000
  int yes = 0;
  return MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &yes) == MPI_SUCCESS && yes != 0;
#else
  return false;
#endif
}

/// The same for ROCm (HIP) device memory.
inline bool rocm_aware() {
#if defined(MPIX_ROCM_AWARE_SUPPORT)
  return MPIX_Query_rocm_support() == 1;
#elif defined(MPICH_NUMVERSION) && MPICH_NUMVERSION >= 40000000
  int yes = 0;
  return MPIX_GPU_query_support(MPIX_GPU_SUPPORT_HIP, &yes) == MPI_SUCCESS && yes != 0;
#else
  return false;
#endif
}

namespace detail {
/// Whether MPI can be handed pointers into MemorySpace.
template <class MemorySpace>
bool mpi_reads(MemorySpace) {
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible) {
    return true;
  } else {
    bool aware = false;
#if defined(KOKKOS_ENABLE_CUDA)
    if constexpr (std::is_same_v<MemorySpace, Kokkos::CudaSpace>) aware = cuda_aware();
#endif
#if defined(KOKKOS_ENABLE_HIP)
    if constexpr (std::is_same_v<MemorySpace, Kokkos::HIPSpace>) aware = rocm_aware();
#endif
    return aware;
  }
}

/// Sums and broadcasts of an arena: its own pointer, or through a host
/// buffer (pinned where Kokkos has pinned host memory) grown once to the
/// largest arena and reused.
template <class T, class ExecSpace>
class ArenaChannel {
 public:
  using memory_space = typename ExecSpace::memory_space;
  using arena_type = Kokkos::View<T*, memory_space>;
#if defined(KOKKOS_HAS_SHARED_HOST_PINNED_SPACE)
  using host_space = Kokkos::SharedHostPinnedSpace;
#else
  using host_space = Kokkos::HostSpace;
#endif

  ArenaChannel(Transport transport, std::size_t reserve)
      : staged_(transport == Transport::staged ||
                (transport == Transport::automatic && !mpi_reads(memory_space{}))) {
    if (staged_) buffer(reserve);
  }
  bool staged() const { return staged_; }

  void allreduce(Communicator const& comm, ExecSpace const& exec, arena_type const& arena) {
    std::size_t const n = arena.extent(0);
    exec.fence("ktnn::mpi::allreduce");  // MPI does not wait for the device
    if (!staged_) return comm.allreduce_sum(arena.data(), n);
    auto const host = buffer(n);
    Kokkos::deep_copy(exec, host, arena);
    exec.fence("ktnn::mpi::allreduce::stage");
    comm.allreduce_sum(host.data(), n);
    Kokkos::deep_copy(exec, arena, host);
  }

  void broadcast(Communicator const& comm, ExecSpace const& exec, arena_type const& arena,
                 int root) {
    std::size_t const n = arena.extent(0);
    exec.fence("ktnn::mpi::broadcast");
    if (!staged_) return comm.broadcast(arena.data(), n, root);
    auto const host = buffer(n);
    Kokkos::deep_copy(exec, host, arena);
    exec.fence("ktnn::mpi::broadcast::stage");
    comm.broadcast(host.data(), n, root);
    Kokkos::deep_copy(exec, arena, host);
    exec.fence("ktnn::mpi::broadcast::unstage");
  }

 private:
  Kokkos::View<T*, host_space> buffer(std::size_t n) {
    if (host_.extent(0) < n)
      host_ = Kokkos::View<T*, host_space>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::mpi::staging"), n);
    return Kokkos::subview(host_, std::make_pair(std::size_t(0), n));
  }

  bool staged_;
  Kokkos::View<T*, host_space> host_;
};

/// A checksum of the bits of data[0, n): a sum of hashes of (index, bits),
/// mod 2^64, so the order of the reduction does not matter.
template <class ExecSpace, class T, class KtnnTU = ::ktnn::detail::ThisTU>
std::uint64_t checksum(ExecSpace const& exec, T const* data, std::size_t n) {
  using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  static_assert(sizeof(T) == sizeof(Bits), "ktnn::mpi: arenas of float or double only");
  std::uint64_t sum = 0;
  Kokkos::parallel_reduce(
      "ktnn::mpi::checksum",
      Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, std::int64_t(n)),
      KOKKOS_LAMBDA(std::int64_t i, std::uint64_t& s) {
        s += random::bits(std::uint64_t(Kokkos::bit_cast<Bits>(data[i])), 0x636865636b73756dULL,
                          std::uint64_t(i));
      },
      sum);
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

template <class T>
KOKKOS_INLINE_FUNCTION void scale_range(T* KOKKOS_RESTRICT x, std::size_t begin, std::size_t end,
                                        T const factor) {
  for (std::size_t i = begin; i < end; ++i) x[i] *= factor;
}

/// x[i] *= factor for i < n.
template <class ExecSpace, class T, class KtnnTU = ::ktnn::detail::ThisTU>
void scale(ExecSpace const& exec, T* x, std::size_t n, T factor) {
  ops::for_each_range(
      exec, "ktnn::mpi::scale_loss_gradient", n,
      KOKKOS_LAMBDA(std::size_t begin, std::size_t end) { scale_range(x, begin, end, factor); });
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

namespace detail {
/// fit's loop as one rank of a data-parallel run (see ktnn::detail::LocalTraining).
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
}  // namespace detail

}  // namespace ktnn::mpi

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
  mpi::detail::DataParallelTraining<Model> run{parallel};
  return detail::fit_with(run, parallel.model(), loss, optimizer, loader, options);
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
    return detail::evaluate_rows(model, loss, data, rows.first, rows.second, batch_size);
  });
  return comm.combine(local);
}

}  // namespace ktnn
