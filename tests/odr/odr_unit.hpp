#pragma once
#include "odr.hpp"

#include <ktnn/ktnn.hpp>

// Internal linkage: each unit runs its own copy of this function; what is
// under test is the linkage of ktnn's functions it instantiates.
namespace {
OdrResult run_unit() {
  using Net = ktnn::Sequential<ktnn::Dense<13, 37, ktnn::Tanh>, ktnn::Dense<37, 5>>;
  using Model = ktnn::Model<Net, float, Kokkos::DefaultHostExecutionSpace>;
  Model model(11);
  typename Model::batch_view x("x", 29, 13);
  auto h = Kokkos::create_mirror_view(x);
  for (int i = 0; i < 29; ++i)
    for (int j = 0; j < 13; ++j) h(i, j) = float(ktnn::random::uniform(3, 0, i * 13 + j));
  Kokkos::deep_copy(x, h);
  auto y = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.forward(x));
  OdrResult r;
  r.isa = Model::isa::name;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  void (*gemm)(Exec const&, char const*, ktnn::Matrix<float const>, ktnn::Matrix<float const>,
               ktnn::Matrix<float>, float, ktnn::ops::Workspace<float>) = &ktnn::ops::gemm;
  r.gemm = reinterpret_cast<void const*>(gemm);
  for (std::size_t i = 0; i < y.extent(0); ++i)
    for (std::size_t j = 0; j < y.extent(1); ++j) r.output.push_back(y(i, j));
  return r;
}
}  // namespace
