// A layer without a backward pass: the protocol check names what is missing.
#include <ktnn/ktnn.hpp>

struct Half : ktnn::LayerDefaults {
  static constexpr int in_features = 4;
  static constexpr int out_features = 4;
  static std::string name() { return "Half"; }
  template <class ExecSpace, class T, class Isa>
  static void forward(ktnn::LayerContext<ExecSpace, T, Isa> const&, ktnn::Matrix<T const>,
                      ktnn::Matrix<T>) {}
  template <class P, class S>
  KOKKOS_FUNCTION static void apply(P const*, P const*, S const*, S*) {}
};

int main() {
  using Net = ktnn::Sequential<ktnn::Dense<3, 4>, Half>;
  return int(Net::param_count);
}
