// Online training inside a running simulation: a plain Kokkos heat-equation
// code (explicit finite differences on a square plate, fixed edge
// temperature, an initial hot spot and a steady heat source) that holds its
// fields as a Fortran-heritage code does, T(nx, ny) in LayoutLeft Views.
// Every few time steps it trains a surrogate, (x, y) -> T at the current
// time, on its own current fields with the public step: the temperature
// array is contiguous, so an unmanaged View of the same memory seen as
// (samples, 1) is the training target, and nothing is copied into a dataset.
// The network is warm-started from the previous round, so each round only
// has to follow the field's change since the last one; the standardisation
// is recomputed from the fields each round, since the field's mean and spread
// drift as the spot fades and the source heats the plate. After each round
// the simulation evaluates the surrogate per grid point inside its own
// kernel through model.inference() and reports its error against the field.
//
//   heat_online [--grid N] [--steps N] [--train-every N] [--train-steps N]
//               [--first-train-steps N] [--seed S] [--max-error E]
//     (exit 1 if the last round's max error, as a fraction of the field's
//     range, is above E)

#include <ktnn/ktnn.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace heat {

// x, y in metres -> T in kelvin. Standardize and Unstandardize carry the
// scales, so the Dense layers see numbers of order one.
using Surrogate =
    ktnn::Sequential<ktnn::Standardize<2>, ktnn::Dense<2, 32, ktnn::Tanh>,
                     ktnn::Dense<32, 32, ktnn::Tanh>, ktnn::Dense<32, 1>, ktnn::Unstandardize<1>>;

// The simulation's arrays, indexed (i, j) with i fastest, as Fortran's
// T(nx, ny); kernels walk them in that order.
using Field = Kokkos::View<double**, Kokkos::LayoutLeft>;
using Memory = Field::memory_space;
using GridPolicy =
    Kokkos::MDRangePolicy<Kokkos::Rank<2, Kokkos::Iterate::Left, Kokkos::Iterate::Left>>;
// A field's memory seen as one column of samples, grid point p = i + nx * j.
using Samples = Kokkos::View<double const**, Kokkos::LayoutLeft, Memory,
                             Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

// The plate: a metre square of diffusivity alpha (m^2/s), edges held at
// t_edge; a Gaussian hot spot at the start and a Gaussian heat source that
// stays on.
constexpr double alpha = 1.0e-4, t_edge = 300.0;
constexpr double spot_x = 0.35, spot_y = 0.6, spot_width = 0.06, spot_excess = 80.0;      // K
constexpr double source_x = 0.7, source_y = 0.3, source_width = 0.06, source_rate = 1.0;  // K/s

struct Options {
  int grid = 64, steps = 1000, train_every = 50, train_steps = 200, first_train_steps = 2000;
  unsigned seed = 1;
  double max_error = 0;
};

// The temperature at t = 0 in both buffers (their edges never change after),
// the source term, and the grid point coordinates, built once.
void initialize(Field const& t, Field const& next, Field const& source,
                Kokkos::View<double**, Kokkos::LayoutLeft> const& coordinates, double h) {
  int const nx = int(t.extent(0)), ny = int(t.extent(1));
  Kokkos::parallel_for(
      "heat::initialize", GridPolicy({0, 0}, {nx, ny}), KOKKOS_LAMBDA(int i, int j) {
        double const x = i * h, y = j * h;
        bool const edge = i == 0 || j == 0 || i == nx - 1 || j == ny - 1;
        double const rs = (x - spot_x) * (x - spot_x) + (y - spot_y) * (y - spot_y);
        double const rq = (x - source_x) * (x - source_x) + (y - source_y) * (y - source_y);
        t(i, j) = next(i, j) =
            edge ? t_edge : t_edge + spot_excess * Kokkos::exp(-rs / (2 * spot_width * spot_width));
        source(i, j) = source_rate * Kokkos::exp(-rq / (2 * source_width * source_width));
        int const p = i + nx * j;
        coordinates(p, 0) = x;
        coordinates(p, 1) = y;
      });
}

// One explicit step: next = t + dt (alpha laplacian(t) + source), interior only.
void advance(Field const& t, Field const& next, Field const& source, double dt, double h) {
  int const nx = int(t.extent(0)), ny = int(t.extent(1));
  double const r = alpha * dt / (h * h);
  Kokkos::parallel_for(
      "heat::advance", GridPolicy({1, 1}, {nx - 1, ny - 1}), KOKKOS_LAMBDA(int i, int j) {
        next(i, j) = t(i, j) +
                     r * (t(i - 1, j) + t(i + 1, j) + t(i, j - 1) + t(i, j + 1) - 4 * t(i, j)) +
                     dt * source(i, j);
      });
}

struct Error {
  double rms, max;  // fractions of the field's range (max T - min T)
};

// The surrogate per grid point in the simulation's own kernel, into
// `predicted`, then its error against the field.
Error evaluate(ktnn::Model<Surrogate, double> const& model, Field const& t,
               Kokkos::View<double**, Kokkos::LayoutLeft> const& coordinates,
               Field const& predicted) {
  int const nx = int(t.extent(0)), ny = int(t.extent(1)), n = nx * ny;
  auto const net = model.inference();
  Kokkos::parallel_for(
      "heat::use_surrogate", GridPolicy({0, 0}, {nx, ny}), KOKKOS_LAMBDA(int i, int j) {
        int const p = i + nx * j;
        Kokkos::Array<double, 2> const at{coordinates(p, 0), coordinates(p, 1)};
        predicted(i, j) = net(at)[0];
      });
  double lowest = 0, highest = 0, worst = 0, squares = 0;
  Kokkos::parallel_reduce(
      "heat::surrogate_error", n,
      KOKKOS_LAMBDA(int p, double& lo, double& hi, double& w, double& s) {
        int const i = p % nx, j = p / nx;
        double const e = Kokkos::abs(predicted(i, j) - t(i, j));
        lo = t(i, j) < lo ? t(i, j) : lo;
        hi = t(i, j) > hi ? t(i, j) : hi;
        w = e > w ? e : w;
        s += e * e;
      },
      Kokkos::Min<double>(lowest), Kokkos::Max<double>(highest), Kokkos::Max<double>(worst),
      Kokkos::Sum<double>(squares));
  double const range = highest - lowest;
  return {std::sqrt(squares / n) / range, worst / range};
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; i += 2) {
    std::string const flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "heat_online: %s needs a value\n", flag.c_str());
      return false;
    }
    char const* value = argv[i + 1];
    if (flag == "--grid")
      o.grid = std::atoi(value);
    else if (flag == "--steps")
      o.steps = std::atoi(value);
    else if (flag == "--train-every")
      o.train_every = std::atoi(value);
    else if (flag == "--train-steps")
      o.train_steps = std::atoi(value);
    else if (flag == "--first-train-steps")
      o.first_train_steps = std::atoi(value);
    else if (flag == "--seed")
      o.seed = unsigned(std::strtoul(value, nullptr, 10));
    else if (flag == "--max-error")
      o.max_error = std::atof(value);
    else {
      std::fprintf(stderr, "heat_online: unknown flag %s\n", flag.c_str());
      return false;
    }
  }
  if (o.grid < 8 || o.steps < 1 || o.train_every < 1 || o.train_steps < 1 ||
      o.first_train_steps < 1 || o.max_error < 0) {
    std::fprintf(stderr,
                 "heat_online: --grid needs at least 8; --steps, --train-every, --train-steps "
                 "and --first-train-steps at least 1; --max-error at least 0\n");
    return false;
  }
  return true;
}

}  // namespace heat

int main(int argc, char** argv) {
  using namespace heat;
  Kokkos::ScopeGuard kokkos(argc, argv);
  Options o;
  if (!parse(argc, argv, o)) return 2;

  // The simulation's state: an nx x ny grid over [0, 1]^2 m, two time levels
  // of T, the source, the surrogate's own field, and the grid point
  // coordinates as an (nx * ny, 2) LayoutLeft array.
  int const nx = o.grid, ny = o.grid, n = nx * ny;
  double const h = 1.0 / (nx - 1);
  double const dt = 0.2 * h * h / alpha;  // the explicit scheme is stable up to 0.25 h^2 / alpha
  Field t("T", nx, ny), next("T_next", nx, ny), source("source", nx, ny),
      predicted("T_surrogate", nx, ny);
  Kokkos::View<double**, Kokkos::LayoutLeft> coordinates("coordinates", n, 2);
  initialize(t, next, source, coordinates, h);

  ktnn::Model<Surrogate, double> model(o.seed);
  ktnn::Adam optimizer(model, {.lr = 3e-3});
  std::printf("heat_online: %d x %d grid, dt %.4g s, training every %d steps\n", nx, ny, dt,
              o.train_every);

  Error error{0, 0};
  double loss = 0;
  int rounds = 0;
  for (int step = 1; step <= o.steps; ++step) {
    advance(t, next, source, dt, h);
    std::swap(t, next);
    if (step % o.train_every != 0 && step != o.steps) continue;

    // [train]
    // The field itself, as (samples, 1). The next time step overwrites it,
    // but only in kernels queued after the training steps on the same
    // execution space, so nothing needs to wait or copy here.
    Samples const temperature(t.data(), n, 1);
    ktnn::standardize(model, coordinates, temperature);  // this field's mean and std
    int const train_steps = rounds == 0 ? o.first_train_steps : o.train_steps;
    ktnn::LossSums last;
    for (int k = 0; k < train_steps; ++k) {
      auto sums = ktnn::train_step(model, ktnn::MSE{}, optimizer, coordinates, temperature);
      if (k + 1 == train_steps) Kokkos::deep_copy(last, sums);  // the round's one read
    }
    // [train]
    ++rounds;
    loss = last.mean_loss();
    error = evaluate(model, t, coordinates, predicted);
    std::printf(
        "step %6d  t %8.2f s  %5d training steps  loss %.4g K^2  surrogate error: rms %.4f, "
        "max %.4f of the range\n",
        step, step * dt, train_steps, loss, error.rms, error.max);
  }
  std::printf(
      "heat_online: %d time steps (%.2f s simulated), %d training rounds on %d grid points, "
      "last loss %.4g K^2, final error rms %.4f, max %.4f of the field's range\n",
      o.steps, o.steps * dt, rounds, n, loss, error.rms, error.max);
  if (o.max_error > 0 && !(error.max <= o.max_error)) {
    std::fprintf(stderr, "heat_online: max error %.4f above the required %.4f\n", error.max,
                 o.max_error);
    return 1;
  }
  return 0;
}
