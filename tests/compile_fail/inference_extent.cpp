// A 3-element array for a 4-input network: a compile error with ktnn's
// message, not a read past the array's end.
#include <ktnn/inference.hpp>
#include <ktnn/model.hpp>

int main() {
  using Net = ktnn::Sequential<ktnn::Dense<4, 2>>;
  ktnn::Model<Net, float> model(1);
  auto net = model.inference();
  float x[3] = {}, y[2];
  net(x, y);
}
