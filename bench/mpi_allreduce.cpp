// What data-parallel training costs on this machine's MPI, for
// docs/scaling.md: run on the ranks to measure (mpirun -np 2 mpi_allreduce).
//
// 1. MPI_Allreduce (sum, in place) of float buffers from 4 B to 16 MiB:
//    min, median and mean time (a barrier before each), and the bus
//    bandwidth of the median, 2 (p-1)/p x bytes / time.
// 2. One step of the demo MLP (784-256-128-10) on each rank's shard of a
//    global batch (--batch, 128): compute alone (forward, loss, backward),
//    compute then one blocking all-reduce of the gradient arena (what
//    ktnn::mpi::DataParallel does), the optimizer step (Adam) alone, and the
//    question of overlap: the model cut after its first layer, the gradients
//    of the last two layers sent with MPI_Iallreduce while the first layer's
//    backward runs (what a bucketed, overlapped all-reduce could do at best
//    here), against the same two all-reduces one after the other.
// 3. The same compute and all-reduce for a 784-1024x4-10 MLP.
//
//   mpirun -np P mpi_allreduce [--reps N] [--batch B]

#include <ktnn/ktnn.hpp>
#include <ktnn/parallel/mpi.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {
using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;
using First = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>>;
using Rest = ktnn::Sequential<ktnn::Dense<256, 128, ktnn::ReLU>, ktnn::Dense<128, 10>>;
using Wide =
    ktnn::Sequential<ktnn::Dense<784, 1024, ktnn::ReLU>, ktnn::Dense<1024, 1024, ktnn::ReLU>,
                     ktnn::Dense<1024, 1024, ktnn::ReLU>, ktnn::Dense<1024, 1024, ktnn::ReLU>,
                     ktnn::Dense<1024, 10>>;
using clock = std::chrono::steady_clock;

struct Summary {
  double min = 0, median = 0, mean = 0;
};

/// Times `f` `reps` times after `warmup` untimed calls, each after a barrier
/// (so every rank starts together); this rank's times.
template <class F>
Summary time_reps(ktnn::mpi::Communicator const& comm, int reps, F const& f, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    comm.barrier();
    auto const start = clock::now();
    f();
    t.push_back(std::chrono::duration<double>(clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  Summary s;
  s.min = t.front();
  s.median = t[t.size() / 2];
  for (double v : t) s.mean += v / double(t.size());
  return s;
}

void line(bool root, char const* what, Summary const& s) {
  if (root)
    std::printf("%-52s min %9.1f  median %9.1f  mean %9.1f us\n", what, 1e6 * s.min, 1e6 * s.median,
                1e6 * s.mean);
}

/// Random inputs and labels for `rows` samples of Model's width.
template <class Model>
auto batch(int rows, std::uint64_t seed) {
  typename Model::batch_view x("x", rows, Model::in_features);
  Kokkos::View<int*> y("y", rows);
  auto xh = Kokkos::create_mirror_view(x);
  auto yh = Kokkos::create_mirror_view(y);
  for (int i = 0; i < rows; ++i) {
    yh(i) = int(ktnn::random::below(10, seed, 1, std::uint64_t(i)));
    for (int j = 0; j < Model::in_features; ++j)
      xh(i, j) = float(ktnn::random::uniform(seed, 2, std::uint64_t(i) * 1024 + std::uint64_t(j)));
  }
  Kokkos::deep_copy(x, xh);
  Kokkos::deep_copy(y, yh);
  return std::pair{x, y};
}

/// Compute alone and compute + the gradient all-reduce, for Net on `rows`
/// samples a rank.
template <class Net>
void model_step(ktnn::mpi::Communicator const& comm, char const* name, int rows, int reps) {
  bool const root = comm.root();
  ktnn::Model<Net, float> model(1);
  auto const [x, y] = batch<ktnn::Model<Net, float>>(rows, 3);
  auto const& exec = model.execution();
  ktnn::CrossEntropy loss;
  auto compute = [&] {
    auto const prediction = model.forward(x);  // before output_gradient(): it sizes it
    compute_loss(exec, loss, prediction, y, model.loss_sums(), model.output_gradient());
    model.backward(false, ktnn::Accumulate::no);
    exec.fence();
  };
  auto grads = model.gradients();
  auto reduce = [&] { comm.allreduce_sum(grads.data(), grads.extent(0)); };
  if (root)
    std::printf("\n%s: %zu parameters (%zu bytes), %d samples a rank\n", name, Net::param_count,
                Net::param_count * sizeof(float), rows);
  line(root, "compute (forward, loss, backward)", time_reps(comm, reps, compute));
  line(root, "all-reduce of the gradient arena", time_reps(comm, reps, reduce));
  line(root, "compute, then the all-reduce", time_reps(comm, reps, [&] {
         compute();
         reduce();
       }));
  ktnn::Adam adam(model, {.lr = 1e-3f});
  line(root, "optimizer step (Adam)", time_reps(comm, reps, [&] {
         adam.step(model.parameters(), model.gradients());
         exec.fence();
       }));
}
}  // namespace

int main(int argc, char** argv) {
  ktnn::mpi::Session session(argc, argv);
  Kokkos::ScopeGuard kokkos(argc, argv);
  return session.run([&] {
    ktnn::mpi::Communicator comm;
    int reps = 200, global = 128;
    for (int i = 1; i < argc; ++i) {
      std::string const flag = argv[i];
      if (flag == "--reps" && i + 1 < argc)
        reps = std::stoi(argv[++i]);
      else if (flag == "--batch" && i + 1 < argc)
        global = std::stoi(argv[++i]);
      else if (flag.rfind("--kokkos", 0) != 0)
        throw ktnn::Error("mpi_allreduce: unknown argument '" + flag + "'");
    }
    bool const root = comm.root();
    int const p = comm.size();
    int const rows = global / p;
    if (root)
      std::printf("mpi_allreduce: %d ranks, %d threads each (%s), %d repetitions\n", p,
                  Kokkos::DefaultExecutionSpace().concurrency(),
                  Kokkos::DefaultExecutionSpace::name(), reps);

    // 1. All-reduce against size.
    if (root)
      std::printf("\n%12s %12s %12s %12s %14s\n", "bytes", "min us", "median us", "mean us",
                  "bus GB/s");
    std::vector<float> buffer(std::size_t(1) << 22, 1.0f);
    for (std::size_t n = 1; n <= buffer.size(); n *= 4) {
      int const r = int(std::clamp<std::size_t>((std::size_t(1) << 26) / (n * 4), 20, 2000));
      auto const s =
          time_reps(comm, std::min(r, 10 * reps), [&] { comm.allreduce_sum(buffer.data(), n); });
      double const bus = 2.0 * (p - 1) / p * double(n * 4) / s.median / 1e9;
      if (root)
        std::printf("%12zu %12.1f %12.1f %12.1f %14.3f\n", n * 4, 1e6 * s.min, 1e6 * s.median,
                    1e6 * s.mean, bus);
    }

    // 2. The demo's step, and overlap.
    model_step<Mlp>(comm, "demo MLP 784-256-128-10", rows, reps);
    ktnn::Model<First, float> first(1);
    ktnn::Model<Rest, float> rest(2);
    auto const [x, y] = batch<ktnn::Model<First, float>>(rows, 3);
    auto const& exec = first.execution();
    ktnn::CrossEntropy loss;
    auto backward_rest = [&] {
      auto const hidden = first.forward(x);
      auto const prediction = rest.forward(hidden);
      compute_loss(exec, loss, prediction, y, rest.loss_sums(), rest.output_gradient());
      rest.backward(true, ktnn::Accumulate::no);
      exec.fence();
    };
    auto backward_first = [&] {
      first.backward(rest.input_gradient(), false, ktnn::Accumulate::no);
      exec.fence();
    };
    auto rest_grads = rest.gradients();
    auto first_grads = first.gradients();
    MPI_Comm const native = comm.native();
    line(root, "split model: compute", time_reps(comm, reps, [&] {
           backward_rest();
           backward_first();
         }));
    line(root, "split model: compute, then 2 blocking all-reduces", time_reps(comm, reps, [&] {
           backward_rest();
           backward_first();
           comm.allreduce_sum(rest_grads.data(), rest_grads.extent(0));
           comm.allreduce_sum(first_grads.data(), first_grads.extent(0));
         }));
    line(root, "split model: last layers' all-reduce overlapped", time_reps(comm, reps, [&] {
           MPI_Request requests[2];
           backward_rest();
           MPI_Iallreduce(MPI_IN_PLACE, rest_grads.data(), int(rest_grads.extent(0)), MPI_FLOAT,
                          MPI_SUM, native, &requests[0]);
           backward_first();
           MPI_Iallreduce(MPI_IN_PLACE, first_grads.data(), int(first_grads.extent(0)), MPI_FLOAT,
                          MPI_SUM, native, &requests[1]);
           MPI_Waitall(2, requests, MPI_STATUSES_IGNORE);
         }));
    if (root)
      std::printf(
          "(the first layer holds %zu of the %zu parameters: only the other %zu can be "
          "sent during backward)\n",
          First::param_count, Mlp::param_count, Rest::param_count);

    // 3. A wider model.
    model_step<Wide>(comm, "MLP 784-1024x4-10", rows, std::max(10, reps / 10));
  });
}
