// A physics-informed network: the 2-D Poisson problem
//
//   -Δu = 2π² sin(πx) sin(πy)  on [0,1]²,   u = 0 on the boundary,
//
// whose exact solution is sin(πx) sin(πy). The network (2-64-64-64-1, Tanh)
// is trained on the equation alone: no solution values, only the PDE residual
// at interior points (which needs the network's Laplacian with respect to its
// inputs) and the boundary condition. Every step draws fresh collocation
// points from a counter-based generator keyed by the seed and the step, so a
// run repeats exactly. The learning rate decays from 1e-3 to 1e-5 along a
// cosine.
//
//   pinn_poisson [--steps N] [--double] [--seed S] [--lr-min L]
//                [--print-every K] [--max-error E]
//
// It prints the relative L2 error on a 101 x 101 grid against the exact
// solution, with the precision, the step count and the steps per second; with
// --max-error it exits 1 when the error is above E.

#include <ktnn/ktnn.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using Network = ktnn::Sequential<ktnn::Dense<2, 64, ktnn::Tanh>, ktnn::Dense<64, 64, ktnn::Tanh>,
                                 ktnn::Dense<64, 64, ktnn::Tanh>, ktnn::Dense<64, 1>>;

constexpr double pi = 3.14159265358979323846;

/// The residual of -Δu = f, written once for any scalar type S (ktnn
/// evaluates it on Jets to get its derivatives).
struct Poisson {
  template <class S>
  KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
    using T = typename ktnn::PointDerivatives<S, 2, 1>::scalar_type;
    T const f = T(2 * pi * pi) * Kokkos::sin(T(pi) * p.x[0]) * Kokkos::sin(T(pi) * p.x[1]);
    return -p.laplacian[0] - f;
  }
};

struct Options {
  int steps = 20000;
  bool use_double = false;
  std::uint64_t seed = 1;
  double lr_max = 1e-3, lr_min = 1e-5;
  int print_every = 2000;
  double max_error = 0;
};

/// Interior points uniform in (0,1)², boundary points uniform on the four
/// edges (a quarter each), both drawn for `step`.
template <class Points>
void draw_points(Points const& interior, Points const& boundary, std::uint64_t seed,
                 std::uint64_t step) {
  using T = typename Points::value_type;
  int const n_interior = int(interior.extent(0)), n_boundary = int(boundary.extent(0));
  Kokkos::parallel_for(
      "pinn_poisson::draw_points", n_interior + n_boundary, KOKKOS_LAMBDA(int i) {
        if (i < n_interior) {
          interior(i, 0) = T(ktnn::random::uniform(seed, 2 * step, 2 * i));
          interior(i, 1) = T(ktnn::random::uniform(seed, 2 * step, 2 * i + 1));
        } else {
          int const b = i - n_interior;
          T const t = T(ktnn::random::uniform(seed, 2 * step + 1, b));
          int const edge = b % 4;
          boundary(b, 0) = edge == 0 ? T(0) : edge == 1 ? T(1) : t;
          boundary(b, 1) = edge == 2 ? T(0) : edge == 3 ? T(1) : t;
        }
      });
}

/// ||u - u_exact|| / ||u_exact|| on a 101 x 101 grid including the boundary.
template <class Model>
double relative_l2_error(Model& model) {
  using T = typename Model::value_type;
  int const side = 101, n = side * side;
  Kokkos::View<T**> grid("pinn_poisson::grid", n, 2);
  Kokkos::parallel_for(
      "pinn_poisson::grid", n, KOKKOS_LAMBDA(int p) {
        grid(p, 0) = T(p % side) / T(side - 1);
        grid(p, 1) = T(p / side) / T(side - 1);
      });
  auto const u = model.forward(grid);
  double error = 0, norm = 0;
  Kokkos::parallel_reduce(
      "pinn_poisson::error", n,
      KOKKOS_LAMBDA(int p, double& e, double& s) {
        double const exact =
            Kokkos::sin(pi * double(grid(p, 0))) * Kokkos::sin(pi * double(grid(p, 1)));
        double const d = double(u(p, 0)) - exact;
        e += d * d;
        s += exact * exact;
      },
      error, norm);
  return std::sqrt(error / norm);
}

template <class T>
int run(Options const& o, char const* precision) {
  ktnn::Model<Network, T> model(o.seed);
  ktnn::Adam adam(model, {.lr = T(o.lr_max)});
  // [pinn]
  ktnn::PhysicsInformed pinn(model, Poisson{}, {.boundary_weight = 100});
  Kokkos::View<T**> interior("interior", 1024, 2), boundary("boundary", 256, 2),
      zero("boundary_values", 256, 1);
  Kokkos::Timer timer;
  for (int step = 0; step < o.steps; ++step) {
    draw_points(interior, boundary, o.seed, step);
    ktnn::train_step(model, pinn, adam, interior, boundary, zero);
    // [pinn]
    double const progress = double(step + 1) / o.steps;
    adam.options().lr = T(o.lr_min + 0.5 * (o.lr_max - o.lr_min) * (1 + std::cos(pi * progress)));
    if (o.print_every > 0 && (step + 1) % o.print_every == 0 && step + 1 < o.steps) {
      ktnn::PhysicsSums s;
      Kokkos::deep_copy(s, pinn.sums());
      std::printf("step %6d  loss %.3e  residual %.3e  boundary %.3e  rel L2 %.3e\n", step + 1,
                  s.loss, s.residual, s.boundary, relative_l2_error(model));
      std::fflush(stdout);
    }
  }
  Kokkos::fence();
  double const seconds = timer.seconds();
  ktnn::PhysicsSums s;
  Kokkos::deep_copy(s, pinn.sums());
  double const error = relative_l2_error(model);
  std::printf(
      "pinn_poisson: %s, %d steps in %.1f s (%.1f steps/s, %d threads), last loss %.3e, "
      "relative L2 error %.3e\n",
      precision, o.steps, seconds, o.steps / seconds, Kokkos::DefaultExecutionSpace().concurrency(),
      s.loss, error);
  if (o.max_error > 0 && !(error <= o.max_error)) {
    std::fprintf(stderr, "pinn_poisson: relative L2 error %.3e above the required %.3e\n", error,
                 o.max_error);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const flag = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pinn_poisson: %s needs a value\n", flag.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (flag == "--steps")
      o.steps = std::stoi(value());
    else if (flag == "--double")
      o.use_double = true;
    else if (flag == "--seed")
      o.seed = std::stoull(value());
    else if (flag == "--lr-min")
      o.lr_min = std::stod(value());
    else if (flag == "--print-every")
      o.print_every = std::stoi(value());
    else if (flag == "--max-error")
      o.max_error = std::stod(value());
    else {
      std::fprintf(stderr, "pinn_poisson: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (o.steps < 1) {
    std::fprintf(stderr, "pinn_poisson: --steps must be at least 1\n");
    return 2;
  }
  return o.use_double ? run<double>(o, "double") : run<float>(o, "float");
}
