// A layer template that says it binds its shape but has no bind<Shape>: the
// check names the member that is missing.
#include <ktnn/ktnn.hpp>

struct Unbound {
  static constexpr bool binds_shape = true;
};

int main() {
  using Net = ktnn::Sequential<ktnn::Dense<3, 4>, Unbound>;
  return int(Net::param_count);
}
