// Trains a tiny regression through the installed headers and checks that
// the loss falls.
#include <ktnn/ktnn.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  using Net = ktnn::Sequential<ktnn::Dense<1, 16, ktnn::Tanh>, ktnn::Dense<16, 1>>;
  ktnn::Model<Net, double> model(3);
  ktnn::Adam optimizer(model, {.lr = 1e-2});
  int const n = 64;
  Kokkos::View<double**, Kokkos::LayoutRight> x("x", n, 1), y("y", n, 1);
  Kokkos::parallel_for(
      n, KOKKOS_LAMBDA(int i) {
        x(i, 0) = -1.0 + 2.0 * i / (n - 1);
        y(i, 0) = x(i, 0) * x(i, 0);
      });
  ktnn::data::RegressionDataset<double, 1> data(ktnn::Tensor<double, 1>(x), y);
  ktnn::data::DataLoader loader(data, {.batch_size = 16});
  ktnn::FitOptions options;
  options.epochs = 200;
  options.out = nullptr;
  auto const history = ktnn::fit(model, ktnn::MSE{}, optimizer, loader, options);
  double const first = history.front().loss, last = history.back().loss;
  std::printf("consumer: ktnn %s, loss fell from %.4g to %.4g\n", ktnn::version, first, last);
  return last < 0.1 * first ? 0 : 1;
}
