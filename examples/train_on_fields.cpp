// Training on a simulation's own fields: a temperature field held, as a
// Fortran-heritage code holds it, in LayoutLeft Views, with coordinates in
// metres and temperatures in kelvin. The surrogate standardises both itself
// (state computed from the fields), trains with the public step on the
// fields as they are (no copy into a dataset), and is then evaluated per grid
// point inside the simulation's own kernel.
//
//   train_on_fields [--steps N] [--max-error E]   (exit 1 if the relative
//                                                 max error is above E)

#include <ktnn/ktnn.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {
// x, y in metres -> T in kelvin. Standardize and Unstandardize carry the
// scales, so the Dense layers see numbers of order one.
using Surrogate =
    ktnn::Sequential<ktnn::Standardize<2>, ktnn::Dense<2, 32, ktnn::Tanh>,
                     ktnn::Dense<32, 32, ktnn::Tanh>, ktnn::Dense<32, 1>, ktnn::Unstandardize<1>>;
using Field = Kokkos::View<double**, Kokkos::LayoutLeft>;
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int steps = 4000;
  double max_error = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string const flag = argv[i];
    if (flag == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (flag == "--max-error")
      max_error = std::atof(argv[i + 1]);
  }

  // The simulation's state: a 32 x 32 grid over a 1 km square, one row per
  // grid point, LayoutLeft.
  int const side = 32, n = side * side;
  Field coordinates("coordinates", n, 2), temperature("temperature", n, 1);
  Kokkos::parallel_for(
      "simulation::fields", n, KOKKOS_LAMBDA(int p) {
        double const x = 1000.0 * (p % side) / (side - 1), y = 1000.0 * (p / side) / (side - 1);
        coordinates(p, 0) = x;
        coordinates(p, 1) = y;
        temperature(p, 0) = 290.0 + 25.0 * Kokkos::sin(3.0e-3 * x) * Kokkos::cos(2.0e-3 * y);
      });

  // [train]
  ktnn::Model<Surrogate, double> model(/*seed=*/1);
  ktnn::standardize(model, coordinates, temperature);  // mean and std become state
  ktnn::Adam optimizer(model, {.lr = 3e-3});
  ktnn::LossSums last;  // summed loss, correct predictions, samples
  for (int step = 0; step < steps; ++step) {
    auto sums = ktnn::train_step(model, ktnn::MSE{}, optimizer, coordinates, temperature);
    if (step + 1 == steps) Kokkos::deep_copy(last, sums);  // the one wait for the device
  }
  // [train]

  // [kernel]
  auto net = model.inference();
  Kokkos::View<double*> error("error", n);
  Kokkos::parallel_for(
      "simulation::use_surrogate", n, KOKKOS_LAMBDA(int p) {
        Kokkos::Array<double, 2> const at{coordinates(p, 0), coordinates(p, 1)};
        double const predicted = net(at)[0];
        error(p) = Kokkos::abs(predicted - temperature(p, 0)) / 25.0;
      });
  // [kernel]
  double worst = 0;
  Kokkos::parallel_reduce(
      "simulation::max_error", n,
      KOKKOS_LAMBDA(int p, double& m) { m = error(p) > m ? error(p) : m; },
      Kokkos::Max<double>(worst));
  std::printf(
      "train_on_fields: %d steps on %d grid points, last loss %.4g K^2, max error %.4f of the "
      "amplitude\n",
      steps, n, last.mean_loss(), worst);
  if (max_error > 0 && !(worst <= max_error)) {
    std::fprintf(stderr, "train_on_fields: max error %.4f above the required %.4f\n", worst,
                 max_error);
    return 1;
  }
  return 0;
}
