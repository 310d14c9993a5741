// Trains a tiny regression through the installed headers and checks that
// the loss falls, then that a checkpoint (safetensors through the package's
// nlohmann-json) brings a fresh model and optimizer back to the same bits.
#include <ktnn/ktnn.hpp>

#include <cstddef>
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

  char const* const path = "ktnn_consumer_checkpoint.safetensors";
  ktnn::save_checkpoint(path, model, optimizer, ktnn::training_progress(loader, options.epochs));
  ktnn::Model<Net, double> again(4);
  ktnn::Adam again_optimizer(again, {.lr = 1e-2});
  auto const progress = ktnn::load_checkpoint(path, again, again_optimizer);
  auto const a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.parameters());
  auto const b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, again.parameters());
  bool same = progress.epochs == options.epochs && a.extent(0) == b.extent(0);
  for (std::size_t i = 0; same && i < a.extent(0); ++i) same = a(i) == b(i);
  std::remove(path);
  if (!same) {
    std::printf("consumer: the checkpoint did not restore the model\n");
    return 1;
  }
  std::printf("consumer: ktnn %s, loss fell from %.4g to %.4g; checkpoint restored\n",
              ktnn::version, first, last);
  return last < 0.1 * first ? 0 : 1;
}
