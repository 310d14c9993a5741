// A data-parallel program through the installed headers and ktnn::mpi (built
// and linked by the install_consumer test, where ktnn was installed with
// KTNN_ENABLE_MPI).
#include <ktnn/ktnn.hpp>
#include <ktnn/parallel/mpi.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  ktnn::mpi::Session session(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  return session.run([&] {
    ktnn::mpi::Communicator comm;
    using Net = ktnn::Sequential<ktnn::Dense<2, 4, ktnn::Tanh>, ktnn::Dense<4, 1>>;
    ktnn::Model<Net, double> model(3);
    ktnn::mpi::DataParallel parallel(comm, model);
    if (comm.root()) std::printf("consumer_mpi: %d ranks\n", comm.size());
  });
}
