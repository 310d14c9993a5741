// The per-sample forward path, called inside a user's own kernel, against the
// batched path.

#include "helpers.hpp"

TEST_CASE_TEMPLATE_DEFINE("per-sample inference in a user kernel matches the batched forward",
                          Space, inference) {
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Dense<6, 33, ktnn::GELU>, ktnn::Dense<33, 17>, ktnn::SiLU,
                                ktnn::Dense<17, 4, ktnn::Sigmoid>>;
  ktnn::Model<Arch, float, Space> model(21);
  int const n = 45;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", n, 6), y("y", n, 4);
  ktnn_test::fill_uniform(x, 5, -2, 2);
  auto const batched = ktnn_test::to_vector(model.forward(x));
  auto net = model.inference();
  Kokkos::parallel_for(
      "user_kernel", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        float in[6], out[4];
        for (int j = 0; j < 6; ++j) in[j] = x(i, j);
        net(in, out);
        for (int j = 0; j < 4; ++j) y(i, j) = out[j];
      });
  ktnn_test::check_close(ktnn_test::to_vector(y), batched, 1e-5, 1e-6);
  static_assert(decltype(net)::in_features == 6 && decltype(net)::out_features == 4);
}
TEST_CASE_TEMPLATE_APPLY(inference, ktnn_test::spaces);
