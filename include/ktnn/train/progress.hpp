#pragma once
/// \file Progress reporting for long work: a line rewritten in place (loss,
/// samples/s, ETA) when the stream is a terminal, plain periodic lines when it
/// is not (logs, CI).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace ktnn {

/// Whether stdout is a terminal a person watches. Not under an MPI launcher:
/// Open MPI gives each rank's stdout a pty of its own, whatever mpirun's
/// output goes to (a log, a pipe), so a rank prints whole lines.
inline bool stdout_is_terminal() {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr)
    return false;
  return ::isatty(STDOUT_FILENO) == 1;
}

class Progress {
 public:
  using clock = std::chrono::steady_clock;

  /// \param interactive rewrite one line (terminal) or print whole lines.
  /// \param interval seconds between reports.
  Progress(std::ostream& out, bool interactive, double interval)
      : out_(out), interactive_(interactive), interval_(interval), last_(clock::now()) {}

  bool due() const {
    return std::chrono::duration<double>(clock::now() - last_).count() >= interval_;
  }

  /// Reports `done` of `total` items of the task called `what` (accuracy < 0:
  /// none to report).
  void report(std::string const& what, double done, double total, double elapsed, double loss,
              double accuracy) {
    last_ = clock::now();
    double const rate = elapsed > 0 ? done / elapsed : 0.0;
    double const eta = rate > 0 ? (total - done) / rate : 0.0;
    std::ostringstream line;
    line << what << " " << std::setw(3) << int(100.0 * done / total) << "% loss " << std::fixed
         << std::setprecision(4) << loss;
    if (accuracy >= 0) line << " acc " << std::setprecision(3) << accuracy;
    line << " " << std::setprecision(0) << rate << " samples/s ETA " << std::setprecision(1) << eta
         << " s";
    if (interactive_)
      out_ << "\r\033[K" << line.str() << std::flush;
    else
      out_ << line.str() << "\n" << std::flush;
    pending_ = interactive_;
  }

  /// Ends an in-place line before ordinary output.
  void clear() {
    if (pending_) out_ << "\r\033[K" << std::flush;
    pending_ = false;
  }

 private:
  std::ostream& out_;
  bool interactive_;
  double interval_;
  clock::time_point last_;
  bool pending_ = false;
};

}  // namespace ktnn
