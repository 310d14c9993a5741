// A data-parallel program in which rank 1 fails, for tests/mpi/check_failure.sh:
//
//   ktnn_mpi_failure unreadable   rank 1 cannot read its training data
//   ktnn_mpi_failure step         rank 1's shard has the wrong feature count
//   ktnn_mpi_failure abort        rank 1 throws outside any agreement while
//                                 rank 0 waits in a step's collective
//
// The first two are agreed on: every rank throws a CollectiveError naming
// rank 1, Session::run returns 1 and each rank says so ("rank R exits with
// 1"). The last is known to rank 1 alone: Session::run ends the job with
// MPI_Abort instead of leaving rank 0 waiting.
//
// With a directory after the mode, each rank writes its stdout and stderr to
// DIR/rank<R>.txt there, appending (mpiexec may interleave two ranks' lines).
#include <ktnn/ktnn.hpp>
#include <ktnn/parallel/mpi.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace {
using Net = ktnn::Sequential<ktnn::Dense<6, 8, ktnn::ReLU>, ktnn::Dense<8, 3>>;
using Model = ktnn::Model<Net, float>;

void run(std::string const& mode, ktnn::mpi::Communicator const& comm) {
  Model model(1);
  ktnn::Adam adam(model, {.lr = 1e-2f});
  ktnn::mpi::DataParallel parallel(comm, model);
  // Training data: read from files (rank 1's are missing), or made here.
  comm.run("load the training data", [&] {
    if (mode == "unreadable" && comm.rank() == 1)
      ktnn::data::read_idx("/nonexistent/train-images-idx3-ubyte.gz", 3);
  });
  Model::batch_view x("x", 4, 6);
  Kokkos::View<float**, Kokkos::LayoutRight> wrong("wrong", 4, 5);
  Kokkos::View<int*> y("y", 4);
  std::size_t const global = 4 * std::size_t(comm.size());
  for (int step = 0; step < 3; ++step) {
    if (step == 1 && comm.rank() == 1) {
      if (mode == "step") {
        parallel.step(ktnn::CrossEntropy{}, adam, wrong, y, global);
        continue;
      }
      if (mode == "abort") throw std::runtime_error("rank 1 gave up outside ktnn");
    }
    parallel.step(ktnn::CrossEntropy{}, adam, x, y, global);
  }
}
}  // namespace

int main(int argc, char** argv) {
  ktnn::mpi::Session session(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc > 2) {
    std::string const file = std::string(argv[2]) + "/rank" + std::to_string(rank) + ".txt";
    if (!std::freopen(file.c_str(), "a", stdout) || !std::freopen(file.c_str(), "a", stderr))
      return 2;
    std::setvbuf(stderr, nullptr, _IONBF, 0);
  }
  int status = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    std::string const mode = argc > 1 ? argv[1] : "";
    status = session.run([&] {
      if (mode != "unreadable" && mode != "step" && mode != "abort")
        throw ktnn::Error("ktnn_mpi_failure: the mode is unreadable, step or abort, not '" + mode +
                          "'");
      ktnn::mpi::Communicator comm;
      run(mode, comm);
    });
  }
  std::printf("rank %d exits with %d\n", rank, status);
  std::fflush(stdout);
  return status;
}
