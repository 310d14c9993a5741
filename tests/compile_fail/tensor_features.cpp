// Must not compile: a Tensor of 100 features fed to a model that takes 784.
#include <ktnn/ktnn.hpp>

using Mlp = ktnn::Sequential<ktnn::Dense<784, 10>>;

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  ktnn::Model<Mlp, float> model;
  ktnn::Tensor<float, 100> x("x", 8);
  model.forward(x);
}
