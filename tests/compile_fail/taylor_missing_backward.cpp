// A layer with half of Taylor mode, used for input derivatives: the check
// names the member that is missing.
#include <ktnn/ktnn.hpp>

struct HalfTaylor : ktnn::LayerDefaults {
  static constexpr int in_features = 4;
  static constexpr int out_features = 4;
  static std::string name() { return "HalfTaylor"; }
  template <class ExecSpace, class T, class Isa>
  static void forward(ktnn::LayerContext<ExecSpace, T, Isa> const&, ktnn::Matrix<T const>,
                      ktnn::Matrix<T>) {}
  template <class ExecSpace, class T, class Isa>
  static void backward(ktnn::LayerContext<ExecSpace, T, Isa> const&, ktnn::Matrix<T const>,
                       ktnn::Matrix<T const>, ktnn::Matrix<T>, ktnn::Matrix<T>) {}
  template <int K, class ExecSpace, class T, class Isa>
  static void forward_taylor(ktnn::LayerContext<ExecSpace, T, Isa> const&, ktnn::Matrix<T const>,
                             ktnn::Matrix<T>) {}
  template <class P, class S>
  KOKKOS_FUNCTION static void apply(P const*, P const*, S const*, S*) {}
};

int main() {
  using Model = ktnn::Model<ktnn::Sequential<ktnn::Dense<2, 4, ktnn::Tanh>, HalfTaylor>, float>;
  return int(sizeof(ktnn::InputDerivatives<Model>));
}
