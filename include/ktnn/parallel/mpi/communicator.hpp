#pragma once
/// \file The MPI side of ktnn's data-parallel training: Communicator (a
/// duplicated MPI_Comm and the agreement all-reduce every collective call
/// starts with), CollectiveError (what every rank throws together when one
/// failed) and Session (MPI for a program's lifetime). See
/// ktnn/parallel/mpi.hpp for the whole.

#include <ktnn/core/error.hpp>
#include <ktnn/losses/loss.hpp>

#include <mpi.h>

#include <algorithm>
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

/// What an agreement (Communicator::agree) reduces, one per rank, and
/// returns: the sums, mins and maxes over the ranks.
struct Agreement {
  std::int64_t failed = 0;        ///< ranks that failed (summed)
  std::int64_t first_failed = 0;  ///< the lowest of them (min)
  std::int64_t sum = 0;           ///< a value summed over the ranks
  std::int64_t same_min = 0;      ///< a value every rank must hold alike:
  std::int64_t same_max = 0;      ///< its min and max
};
static_assert(sizeof(Agreement) == 5 * sizeof(std::int64_t));

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

}  // namespace ktnn::mpi
