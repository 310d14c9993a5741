// The doctest main of the MPI tests, run on every rank (mpiexec -n 2): MPI
// and Kokkos around the run; the job fails when a case fails on any rank.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <ktnn/parallel/mpi.hpp>

int main(int argc, char** argv) {
  ktnn::mpi::Session session(argc, argv);
  Kokkos::ScopeGuard kokkos(argc, argv);
  doctest::Context context(argc, argv);
  int const failed = context.run() != 0 ? 1 : 0;
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any;
}
