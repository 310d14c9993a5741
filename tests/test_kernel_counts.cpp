// Kernels and deep copies per training step, counted with Kokkos Tools
// callbacks (launch_counter.hpp) inside the "ktnn::train_step" profiling
// region and inside fit's "ktnn::fit::step" regions. At small batches on a
// GPU a step costs about its launches, and the count does not depend on the
// machine, so each step is held to an upper bound here: a change that adds
// launches fails, one that fuses kernels lowers the bound. A program of its
// own, because the callbacks are global to the process.

#include "helpers.hpp"
#include "launch_counter.hpp"

#include <vector>

namespace {

using ktnn_test::count_launches;

/// Class labels 0..classes-1 in turn.
template <class Space>
Kokkos::View<int*, typename Space::memory_space> labels(int n, int classes) {
  std::vector<int> values(std::size_t(n), 0);
  for (int i = 0; i < n; ++i) values[std::size_t(i)] = i % classes;
  return ktnn_test::device_vector<int, Space>(values, "labels");
}

/// The demo's network (examples/fashion_mnist_mlp.cpp).
using DemoMlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>,
                                 ktnn::Dense<256, 128, ktnn::ReLU>, ktnn::Dense<128, 10>>;
/// The CNN example's network (examples/fashion_mnist_cnn.cpp).
using ExampleCnn = ktnn::Sequential<
    ktnn::Conv2D<ktnn::Image<1, 28, 28>, 32, 3, ktnn::ReLU, ktnn::Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Conv2D<ktnn::Image<32, 14, 14>, 64, 3, ktnn::ReLU, ktnn::Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Flatten, ktnn::Dense<3136, 128, ktnn::ReLU>, ktnn::Dense<128, 10>>;
/// The physics-informed example's network and residual (examples/pinn_poisson.cpp).
using PinnNet = ktnn::Sequential<ktnn::Dense<2, 64, ktnn::Tanh>, ktnn::Dense<64, 64, ktnn::Tanh>,
                                 ktnn::Dense<64, 64, ktnn::Tanh>, ktnn::Dense<64, 1>>;
struct Poisson {
  template <class S>
  KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
    using T = typename ktnn::PointDerivatives<S, 2, 1>::scalar_type;
    T const f = T(2) * Kokkos::sin(T(3) * p.x[0]) * Kokkos::sin(T(3) * p.x[1]);
    return -p.laplacian[0] - f;
  }
};

/// An upper bound on the kernels of a step: with the host kernels, and with
/// the device kernels as they run on the host (the _device_kernels program,
/// split-K sums included). A GPU splits K where the host did not (it has
/// more teams to fill), so there each GEMM may add a pass that sums its
/// slices: at most `products` more.
struct Bound {
  int host;
  int device;
  int products;
  template <class Space>
  int of() const {
    if constexpr (!ktnn::ops::device_kernels<Space>)
      return host;
    else if constexpr (ktnn::ops::is_host_space<Space>)
      return device;
    else
      return device + products;
  }
};

// The bounds: what a step launches today. Lower one when a change fuses
// kernels; never raise one without saying why in the commit.
constexpr Bound demo_step{.host = 8, .device = 23, .products = 8};
constexpr Bound cnn_step{.host = 18, .device = 30, .products = 6};
constexpr Bound pinn_step{.host = 27, .device = 50, .products = 22};
// fit's step adds the loader's gather of the batch's inputs and targets.
constexpr int loader_kernels = 2;

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("kernels per train_step: the demo's MLP", Space, demo_count) {
  using Mem = typename Space::memory_space;
  ktnn::Model<DemoMlp, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", 128, 784);
  ktnn_test::fill_uniform(x, 2, 0, 1);
  auto const y = labels<Space>(128, 10);
  auto step = [&] { ktnn::train_step(model, ktnn::CrossEntropy{}, adam, x, y); };
  step();  // the first step sizes the buffers
  auto const launches = count_launches("ktnn::train_step", step);
  MESSAGE("demo step: " << launches.kernels << " kernels, " << launches.deep_copies
                        << " deep copies: " << launches.list());
  CHECK(launches.kernels > 0);  // the hooks see the step
  CHECK(launches.kernels <= demo_step.of<Space>());
  CHECK(launches.deep_copies == 0);
}
TEST_CASE_TEMPLATE_APPLY(demo_count, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("kernels per step of fit: the demo's MLP", Space, demo_fit_count) {
  using Mem = typename Space::memory_space;
  int const samples = 4 * 128;
  ktnn::data::ClassificationDataset<float, 784, Mem> data(
      ktnn::Tensor<float, 784, Kokkos::LayoutRight, Mem>("x", samples), labels<Space>(samples, 10));
  ktnn_test::fill_uniform(data.inputs.view(), 2, 0, 1);
  ktnn::Model<DemoMlp, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 128});
  ktnn::FitOptions options;
  options.epochs = 1;
  ktnn::fit(model, ktnn::CrossEntropy{}, adam, loader, options);  // sizes the buffers
  options.epochs = 2;
  options.first_epoch = 1;
  auto const launches = count_launches(
      "ktnn::fit::step", [&] { ktnn::fit(model, ktnn::CrossEntropy{}, adam, loader, options); });
  MESSAGE("demo fit: " << launches.kernels << " kernels in " << launches.entries
                       << " steps: " << launches.list());
  CHECK(launches.entries == 4);
  CHECK(launches.kernels > 0);
  CHECK(launches.kernels <= 4 * (demo_step.of<Space>() + loader_kernels));
  CHECK(launches.deep_copies == 0);
}
TEST_CASE_TEMPLATE_APPLY(demo_fit_count, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("kernels per train_step: the CNN example", Space, cnn_count) {
  using Mem = typename Space::memory_space;
  ktnn::Model<ExampleCnn, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", 8, 784);
  ktnn_test::fill_uniform(x, 2, 0, 1);
  auto const y = labels<Space>(8, 10);
  auto step = [&] { ktnn::train_step(model, ktnn::CrossEntropy{}, adam, x, y); };
  step();
  auto const launches = count_launches("ktnn::train_step", step);
  MESSAGE("CNN step: " << launches.kernels << " kernels, " << launches.deep_copies
                       << " deep copies: " << launches.list());
  CHECK(launches.kernels > 0);
  CHECK(launches.kernels <= cnn_step.of<Space>());
  CHECK(launches.deep_copies == 0);
}
TEST_CASE_TEMPLATE_APPLY(cnn_count, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("kernels per train_step: the physics-informed Poisson step", Space,
                          pinn_count) {
  using Mem = typename Space::memory_space;
  ktnn::Model<PinnNet, float, Space> model(1);
  ktnn::Adam<float, Space> adam(model);
  ktnn::PhysicsInformed pinn(model, Poisson{}, {.boundary_weight = 100});
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> interior("interior", 64, 2),
      boundary("boundary", 16, 2), zero("boundary_values", 16, 1);
  ktnn_test::fill_uniform(interior, 3, 0, 1);
  ktnn_test::fill_uniform(boundary, 4, 0, 1);
  auto step = [&] { ktnn::train_step(model, pinn, adam, interior, boundary, zero); };
  step();
  auto const launches = count_launches("ktnn::train_step", step);
  MESSAGE("PINN step: " << launches.kernels << " kernels, " << launches.deep_copies
                        << " deep copies: " << launches.list());
  CHECK(launches.kernels > 0);
  CHECK(launches.kernels <= pinn_step.of<Space>());
  CHECK(launches.deep_copies == 0);
}
TEST_CASE_TEMPLATE_APPLY(pinn_count, ktnn_test::spaces);
