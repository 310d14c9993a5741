// An optimizer without set_learning_rate handed to train_step: the protocol
// check names what is missing.
#include <ktnn/ktnn.hpp>

struct Frozen {
  using value_type = float;
  using execution_space = Kokkos::DefaultExecutionSpace;
  using memory_space = execution_space::memory_space;
  void step(Kokkos::View<float*, memory_space> const&, Kokkos::View<float*, memory_space> const&) {}
  float learning_rate() const { return 0; }
  std::int64_t non_finite_step() const { return -1; }
  void clear_non_finite() {}
  std::string state_type() const { return "Frozen"; }
  std::vector<ktnn::StateTensor<float, memory_space>> state_tensors() const { return {}; }
  ktnn::Counters export_counters() const { return {}; }
  void import_counters(ktnn::Counters const&, bool = false) {}
};

int main() {
  using Net = ktnn::Sequential<ktnn::Dense<4, 2>>;
  ktnn::Model<Net, float> model(1);
  Kokkos::View<float**> x("x", 3, 4), y("y", 3, 2);
  Frozen frozen;
  ktnn::train_step(model, ktnn::MSE{}, frozen, x, y);
}
