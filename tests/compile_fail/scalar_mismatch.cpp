// A double View given to a float model: a compile error that names both
// scalar types, not a brace-initializer error.
#include <ktnn/ktnn.hpp>

int main() {
  using Net = ktnn::Sequential<ktnn::Dense<4, 2>>;
  ktnn::Model<Net, float> model(1);
  Kokkos::View<double**> x("x", 3, 4);
  model.forward(x);
}
