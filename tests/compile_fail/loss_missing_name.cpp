// A loss without `name`: the protocol check names what is missing.
#include <ktnn/ktnn.hpp>

struct Halved {
  static constexpr bool reports_accuracy = false;
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const&, ktnn::Matrix<T const>, Targets const&, ktnn::Matrix<T>,
                  Kokkos::View<ktnn::LossSums, typename ExecSpace::memory_space>) const {}
};

int main() {
  Kokkos::View<float**> prediction("prediction", 3, 2), targets("targets", 3, 2);
  return int(ktnn::loss_sums(Kokkos::DefaultExecutionSpace{}, Halved{}, prediction, targets).count);
}
