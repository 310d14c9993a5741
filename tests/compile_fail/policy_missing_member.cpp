// A training policy without combine: the protocol check names what is missing.
#include <ktnn/ktnn.hpp>

#include <utility>

struct NoCombine {
  template <class F>
  decltype(auto) guard(char const*, F&& f) {
    return std::forward<F>(f)();
  }
  bool writes() const { return true; }
  template <class Loader>
  int batch_rows(Loader const& loader) const {
    return loader.batch_size();
  }
  template <class Model, class Loss, class Optimizer, class Loader, class Sums>
  void step(Model&, Loss const&, Optimizer&, Loader&, int, Sums const&) {}
  template <class Model>
  void end_epoch(Model&) {}
};

int main() {
  using Space = Kokkos::DefaultHostExecutionSpace;
  using Net = ktnn::Sequential<ktnn::Dense<2, 1>>;
  Kokkos::View<float**, Kokkos::LayoutRight, Space::memory_space> x("x", 4, 2), y("y", 4, 1);
  auto data = ktnn::data::make_dataset<2>(x, y);
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 2});
  ktnn::Model<Net, float, Space> model(1);
  ktnn::SGD<float, Space> sgd(model);
  NoCombine policy;
  return int(ktnn::fit_with(policy, model, ktnn::MSE{}, sgd, loader).size());
}
