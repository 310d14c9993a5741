// The per-sample forward path, called inside a user's own kernel, against the
// batched path.

#include "helpers.hpp"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

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

TEST_CASE_TEMPLATE_DEFINE("inference on Kokkos::Array, returned arrays and rows of Views", Space,
                          inference_forms) {
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Dense<3, 9, ktnn::Tanh>, ktnn::Dense<9, 2>>;
  ktnn::Model<Arch, double, Space> model(4);
  int const n = 31;
  // The caller's fields are LayoutLeft; inference reads and writes their rows
  // through strides.
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem> x("x", n, 3), by_row("by_row", n, 2);
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> by_array("by_array", n, 2),
      by_value("by_value", n, 2);
  ktnn_test::fill_uniform(x, 6);
  auto const batched = ktnn_test::to_vector(model.forward(x));
  auto net = model.inference();
  Kokkos::parallel_for(
      "user_kernel", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        net(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(by_row, i, Kokkos::ALL));
        Kokkos::Array<double, 3> in{x(i, 0), x(i, 1), x(i, 2)};
        Kokkos::Array<double, 2> out;
        net(in, out);
        auto const value = net(in);
        auto const from_row = net(Kokkos::subview(x, i, Kokkos::ALL));
        for (int j = 0; j < 2; ++j) {
          by_array(i, j) = out[j];
          by_value(i, j) = from_row[j] == value[j] ? value[j] : -1e300;  // both returning forms
        }
      });
  std::vector<double> row_major(std::size_t(n) * 2);
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, by_row);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 2; ++j) row_major[std::size_t(i) * 2 + j] = host(i, j);
  ktnn_test::check_close(row_major, batched, 1e-13, 1e-14);
  ktnn_test::check_close(ktnn_test::to_vector(by_array), batched, 1e-13, 1e-14);
  CHECK(ktnn_test::to_vector(by_value) == ktnn_test::to_vector(by_array));
}
TEST_CASE_TEMPLATE_APPLY(inference_forms, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("standardisation: state from data, gradients, inference", Space,
                          standardize) {
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Standardize<3>, ktnn::Dense<3, 6, ktnn::Tanh>,
                                ktnn::Dense<6, 2>, ktnn::Unstandardize<2>>;
  static_assert(Arch::param_count == 3 * 6 + 6 + 6 * 2 + 2 && Arch::state_count == 6 + 4);
  // Badly scaled fields, LayoutLeft, as a simulation holds them.
  int const n = 2500;  // more than one reduction chunk
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem> x("x", n, 3), y("y", n, 2);
  ktnn_test::fill_uniform(x, 9);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        x(i, 0) = 1000 + 50 * x(i, 0);
        x(i, 1) = 1e-3 * x(i, 1);
        x(i, 2) = 7.0;  // a constant column: std 1, not a division by zero
        y(i, 0) = 300 + 20 * x(i, 1) * 1e3;
        y(i, 1) = -5 + 0.01 * x(i, 0);
      });
  ktnn::Model<Arch, double, Space> model(1);
  auto const identity = ktnn_test::to_vector(model.state());
  CHECK(identity == std::vector<double>{0, 0, 0, 1, 1, 1, 0, 0, 1, 1});
  auto const& names = model.state_index();
  REQUIRE(names.size() == 4);
  CHECK(names[0].name == "0.mean");
  CHECK(names[1].name == "0.std");
  CHECK(names[2].name == "4.mean");  // the fused Tanh is module 2
  CHECK(names[3].name == "4.std");
  CHECK(model.state("4.std").extent(0) == 2);

  ktnn::standardize(model, x, y);
  auto const state = ktnn_test::to_vector(model.state());
  // Against a plain two-pass computation on the host.
  auto const xs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, x);
  auto const ys = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, y);
  auto stats = [&](auto const& v, int j) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; ++i) mean += v(i, j);
    mean /= n;
    for (int i = 0; i < n; ++i) var += (v(i, j) - mean) * (v(i, j) - mean);
    return std::pair<double, double>{mean, std::sqrt(var / n)};
  };
  for (int j = 0; j < 3; ++j) {
    auto const [mean, sd] = stats(xs, j);
    CHECK(state[j] == doctest::Approx(mean).epsilon(1e-12));
    if (j < 2) CHECK(state[3 + j] == doctest::Approx(sd).epsilon(1e-9));
  }
  CHECK(state[5] == 1.0);  // the constant column
  for (int j = 0; j < 2; ++j) {
    auto const [mean, sd] = stats(ys, j);
    CHECK(state[6 + j] == doctest::Approx(mean).epsilon(1e-12));
    CHECK(state[8 + j] == doctest::Approx(sd).epsilon(1e-9));
  }
  ktnn::standardize(model, x, y);
  CHECK(ktnn_test::to_vector(model.state()) == state);  // deterministic, bit for bit
  CHECK(ktnn_test::to_vector(model.parameters()) ==
        ktnn_test::to_vector(ktnn::Model<Arch, double, Space>(1).parameters()));

  // The batched path and the per-sample path both apply the state.
  auto const batched = ktnn_test::to_vector(model.forward(x));
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> z("z", n, 2);
  auto net = model.inference();
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        net(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(z, i, Kokkos::ALL));
      });
  ktnn_test::check_close(ktnn_test::to_vector(z), batched, 1e-12, 1e-9);

  // Gradients through both layers with non-trivial state.
  ktnn_test::check_gradients<Arch, Space>(
      5, 3, [](auto& m) { ktnn_test::fill_uniform(m.state(), 4, 0.5, 2.0); });
}
TEST_CASE_TEMPLATE_APPLY(standardize, ktnn_test::spaces);

// The team form: Inference::stage copies the weights into a team's scratch
// once and returns the same call operators over them.
namespace inference_team {

/// y = f(x) row by row, one sample per thread (RangePolicy).
template <class Space, class Net, class X, class Y>
void per_thread(Net const& net, X const& x, Y const& y) {
  Kokkos::parallel_for(
      "per_thread", Kokkos::RangePolicy<Space>(0, x.extent(0)), KOKKOS_LAMBDA(int i) {
        net(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(y, i, Kokkos::ALL));
      });
}

/// y = f(x) with `tile` rows per team, the weights staged at `level`; a team
/// of up to `team_size` threads (0: Kokkos::AUTO).
template <class Space, class Net, class X, class Y>
void per_team(Net const& net, X const& x, Y const& y, int tile, int level, int team_size) {
  using Policy = Kokkos::TeamPolicy<Space>;
  int const n = int(x.extent(0));
  int const league = (n + tile - 1) / tile;
  auto const kernel = KOKKOS_LAMBDA(typename Policy::member_type const& team) {
    auto const local = net.stage(team, level);
    int const first = team.league_rank() * tile;
    int const last = Kokkos::min(n, first + tile);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, first, last), [&](int i) {
      local(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(y, i, Kokkos::ALL));
    });
  };
  auto const bytes = Kokkos::PerTeam(Net::team_scratch_bytes());
  if (team_size > 0) {
    Policy probe(league, 1);
    probe.set_scratch_size(level, bytes);
    team_size = std::min(team_size, probe.team_size_max(kernel, Kokkos::ParallelForTag{}));
  }
  Policy policy = team_size > 0 ? Policy(league, team_size) : Policy(league, Kokkos::AUTO);
  policy.set_scratch_size(level, bytes);
  Kokkos::parallel_for("per_team", policy, kernel);
}

/// A network with state (Standardize, Unstandardize) set to values other than
/// the identity: per-team results equal per-thread ones, for tiles that do
/// not divide the sample count, at levels 0 and 1, on one thread per team and
/// on several.
template <class Space, class T>
void check_team_matches_thread() {
  using Mem = typename Space::memory_space;
  using Arch =
      ktnn::Sequential<ktnn::Standardize<3>, ktnn::Dense<3, 16, ktnn::Tanh>,
                       ktnn::Dense<16, 16, ktnn::GELU>, ktnn::Dense<16, 2>, ktnn::Unstandardize<2>>;
  ktnn::Model<Arch, T, Space> model(3);
  ktnn_test::fill_uniform(model.state(), 11, 0.5, 2.0);
  auto const net = model.inference();
  using Net = decltype(net);
  static_assert(Net::team_scratch_bytes() ==
                (Arch::param_count + Arch::state_count) * sizeof(T) + 8);
  int const n = 45;
  Kokkos::View<T**, Kokkos::LayoutLeft, Mem> x("x", n, 3);
  Kokkos::View<T**, Kokkos::LayoutRight, Mem> by_thread("by_thread", n, 2),
      by_team("by_team", n, 2);
  ktnn_test::fill_uniform(x, 12, -3, 3);
  per_thread<Space>(net, x, by_thread);
  auto const expected = ktnn_test::to_vector(by_thread);
  double const rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  for (int level : {0, 1})
    for (int tile : {16, 7, 1, 64})
      for (int team_size : {0, 4}) {
        INFO("level " << level << ", tile " << tile << ", team size " << team_size);
        Kokkos::deep_copy(by_team, T(-1e30));
        per_team<Space>(net, x, by_team, tile, level, team_size);
        ktnn_test::check_close(ktnn_test::to_vector(by_team), expected, rtol, rtol);
      }
}

}  // namespace inference_team

TEST_CASE_TEMPLATE_DEFINE("team inference: weights staged in scratch equal per-thread inference",
                          Space, team_inference) {
  SUBCASE("float") {
    inference_team::check_team_matches_thread<Space, float>();
  }
  SUBCASE("double") {
    inference_team::check_team_matches_thread<Space, double>();
  }
}
TEST_CASE_TEMPLATE_APPLY(team_inference, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("team inference: weights larger than level-0 scratch, at level 1", Space,
                          team_inference_level1) {
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Dense<8, 192, ktnn::Tanh>, ktnn::Dense<192, 192, ktnn::Tanh>,
                                ktnn::Dense<192, 2>>;
  ktnn::Model<Arch, double, Space> model(5);
  auto const net = model.inference();
  // 313 KB: more than level 0 holds on host backends (32 KiB) or in a GPU's
  // shared memory (at most 227 KiB per block).
  static_assert(decltype(net)::team_scratch_bytes() > 256 * 1024);
  int const n = 37;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> x("x", n, 8), by_thread("by_thread", n, 2),
      by_team("by_team", n, 2);
  ktnn_test::fill_uniform(x, 13, -2, 2);
  inference_team::per_thread<Space>(net, x, by_thread);
  inference_team::per_team<Space>(net, x, by_team, 8, 1, 0);
  ktnn_test::check_close(ktnn_test::to_vector(by_team), ktnn_test::to_vector(by_thread), 1e-14,
                         1e-14);
  // Asked at level 0, Kokkos refuses the launch (before any team runs).
  CHECK_THROWS_AS(inference_team::per_team<Space>(net, x, by_team, 8, 0, 0), std::runtime_error);
}
TEST_CASE_TEMPLATE_APPLY(team_inference_level1, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("team inference: the kernel's own scratch after the staged weights",
                          Space, team_inference_own_scratch) {
  using Mem = typename Space::memory_space;
  using Policy = Kokkos::TeamPolicy<Space>;
  using Arch = ktnn::Sequential<ktnn::Dense<5, 12, ktnn::SiLU>, ktnn::Dense<12, 3>>;
  using Rows = Kokkos::View<float**, Kokkos::LayoutRight, typename Space::scratch_memory_space,
                            Kokkos::MemoryUnmanaged>;
  ktnn::Model<Arch, float, Space> model(8);
  auto const net = model.inference();
  int const n = 29, tile = 6, league = (n + tile - 1) / tile;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", n, 5), by_thread("by_thread", n, 3),
      by_team("by_team", n, 3);
  ktnn_test::fill_uniform(x, 14);
  inference_team::per_thread<Space>(net, x, by_thread);
  // The tile's inputs copied to scratch too, allocated after stage's block
  // from the same level: the policy asks for both.
  Policy policy(league, Kokkos::AUTO);
  policy.set_scratch_size(0, Kokkos::PerTeam(net.team_scratch_bytes() + Rows::shmem_size(tile, 5)));
  Kokkos::parallel_for(
      "own_scratch", policy, KOKKOS_LAMBDA(typename Policy::member_type const& team) {
        auto const local = net.stage(team, 0);
        Rows rows(team.team_scratch(0), tile, 5);
        int const first = team.league_rank() * tile, count = Kokkos::min(n - first, tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, count), [&](int r) {
          for (int j = 0; j < 5; ++j) rows(r, j) = x(first + r, j);
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, count), [&](int r) {
          local(Kokkos::subview(rows, r, Kokkos::ALL),
                Kokkos::subview(by_team, first + r, Kokkos::ALL));
        });
      });
  ktnn_test::check_close(ktnn_test::to_vector(by_team), ktnn_test::to_vector(by_thread), 1e-6,
                         1e-6);
}
TEST_CASE_TEMPLATE_APPLY(team_inference_own_scratch, ktnn_test::spaces);
