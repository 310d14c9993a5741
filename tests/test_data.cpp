// IDX files (valid, corrupt, truncated), Fashion-MNIST as Debian ships it,
// and the loader's batching and shuffling.

#include "helpers.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace {
std::filesystem::path scratch(std::string const& name) {
  return std::filesystem::temp_directory_path() / ("ktnn_test_" + name);
}

std::vector<std::uint8_t> idx_bytes(std::vector<std::uint32_t> dims, std::size_t payload) {
  std::vector<std::uint8_t> out = {0, 0, 0x08, std::uint8_t(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(std::uint8_t(d >> s));
  for (std::size_t i = 0; i < payload; ++i) out.push_back(std::uint8_t(i * 7));
  return out;
}

void write_gzip(std::filesystem::path const& path, std::vector<std::uint8_t> const& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  gzclose(f);
}
}  // namespace

TEST_CASE("IDX: a valid gzip file and a plain one") {
  auto const path = scratch("valid.idx.gz");
  write_gzip(path, idx_bytes({3, 2, 2}, 12));
  auto a = ktnn::data::read_idx(path.string(), 3);
  CHECK(a.dims == std::vector<std::size_t>{3, 2, 2});
  REQUIRE(a.bytes.size() == 12);
  CHECK(a.bytes[5] == 35);
  auto const plain = scratch("valid.idx");
  auto const bytes = idx_bytes({4}, 4);
  std::ofstream(plain, std::ios::binary)
      .write(reinterpret_cast<char const*>(bytes.data()), std::streamsize(bytes.size()));
  CHECK(ktnn::data::read_idx(plain.string(), 1).bytes.size() == 4);
  std::filesystem::remove(path);
  std::filesystem::remove(plain);
}

TEST_CASE("IDX: corrupt and truncated files throw ktnn::Error naming the file") {
  auto const path = scratch("bad.idx.gz");
  auto const name = path.string();
  auto expect = [&](std::vector<std::uint8_t> const& bytes, std::size_t rank, char const* what) {
    write_gzip(path, bytes);
    CHECK_THROWS_WITH_AS(ktnn::data::read_idx(name, rank), doctest::Contains(what), ktnn::Error);
    CHECK_THROWS_WITH_AS(ktnn::data::read_idx(name, rank), doctest::Contains(name.c_str()),
                         ktnn::Error);
  };
  auto bad_magic = idx_bytes({2}, 2);
  bad_magic[0] = 1;
  expect(bad_magic, 1, "wrong magic number");
  auto bad_type = idx_bytes({2}, 2);
  bad_type[2] = 0x0D;  // float elements
  expect(bad_type, 1, "element type 13");
  expect(idx_bytes({2, 3}, 6), 1, "has 2 dimensions, expected 1");
  expect(idx_bytes({10, 5}, 49), 2, "declares 50 elements but holds 49");
  expect(idx_bytes({10}, 11), 1, "declares 10 elements but holds 11");
  expect({0, 0, 8}, 1, "too short for an IDX header");
  expect({0, 0, 8, 2, 0, 0}, 2, "truncated inside its header");

  // A gzip stream cut in half.
  write_gzip(path, idx_bytes({1000}, 1000));
  auto const full = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, full / 2);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(name, 1), doctest::Contains("corrupt or truncated"),
                       ktnn::Error);
  // Garbage after a valid gzip header.
  {
    write_gzip(path, idx_bytes({1000}, 1000));
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    char junk[32];
    std::fill(std::begin(junk), std::end(junk), '\x5a');
    f.write(junk, sizeof junk);
  }
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(name, 1), doctest::Contains(name.c_str()), ktnn::Error);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(ktnn::data::read_idx(name, 1), doctest::Contains("cannot open"),
                       ktnn::Error);
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist") {
  auto train = ktnn::data::load_fashion_mnist<float>("train");
  auto test = ktnn::data::load_fashion_mnist<float>("test");
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  auto labels = ktnn_test::to_vector(test.targets);
  std::vector<int> per_class(10);
  for (double l : labels) ++per_class[int(l)];
  CHECK(per_class == std::vector<int>(10, 1000));  // the test split is balanced
  auto pixels =
      ktnn_test::to_vector(Kokkos::subview(test.inputs.view(), std::make_pair(0, 50), Kokkos::ALL));
  CHECK(*std::min_element(pixels.begin(), pixels.end()) == 0.0);
  CHECK(*std::max_element(pixels.begin(), pixels.end()) == 1.0);
  CHECK_THROWS_WITH_AS(ktnn::data::load_fashion_mnist<float>("validation"),
                       doctest::Contains("split must be"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::data::load_fashion_mnist<float>("train", "/nonexistent"),
                       doctest::Contains("cannot open '/nonexistent/train-images-idx3-ubyte.gz'"),
                       ktnn::Error);
}

TEST_CASE_TEMPLATE_DEFINE("DataLoader: batches, partial batch, seeded shuffling", Space, loader) {
  using Mem = typename Space::memory_space;
  int const n = 23;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", n, 3);
  Kokkos::View<int*, Mem> y("y", n);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < 3; ++j) x(i, j) = float(10 * i + j);
        y(i) = i;
      });
  ktnn::data::ClassificationDataset<float, 3, Mem> data(ktnn::as_tensor<3>(x), y);
  auto order_of = [&](ktnn::data::DataLoader<decltype(data), Space>& loader, int epoch) {
    loader.start_epoch(epoch);
    std::vector<int> seen;
    for (int b = 0; b < loader.batches(); ++b) {
      auto [bx, by] = loader.batch(b);
      auto const xs = ktnn_test::to_vector(bx.view());
      auto const ys = ktnn_test::to_vector(by);
      CHECK(bx.batch() == ys.size());
      for (std::size_t r = 0; r < ys.size(); ++r) {
        CHECK(xs[3 * r + 2] == 10 * ys[r] + 2);  // inputs and targets stay paired
        seen.push_back(int(ys[r]));
      }
    }
    return seen;
  };
  ktnn::data::DataLoader<decltype(data), Space> ordered(data, {.batch_size = 5, .shuffle = false});
  CHECK(ordered.batches() == 5);
  auto const in_order = order_of(ordered, 0);
  std::vector<int> identity(n);
  for (int i = 0; i < n; ++i) identity[i] = i;
  CHECK(in_order == identity);
  CHECK(ordered.batch(4).first.batch() == 3);  // the partial last batch
  CHECK_THROWS_AS(ordered.batch(5), ktnn::Error);

  ktnn::data::DataLoader<decltype(data), Space> a(data, {.batch_size = 5, .seed = 9}),
      b(data, {.batch_size = 5, .seed = 9});
  auto const a0 = order_of(a, 0), b0 = order_of(b, 0), a1 = order_of(a, 1);
  CHECK(a0 == b0);
  CHECK(a0 != a1);
  CHECK(a0 != identity);
  CHECK(std::set<int>(a0.begin(), a0.end()).size() == std::size_t(n));  // a permutation

  ktnn::data::DataLoader<decltype(data), Space> dropping(
      data, {.batch_size = 5, .shuffle = false, .drop_last = true});
  CHECK(dropping.batches() == 4);
  CHECK(dropping.samples() == 20);
  CHECK_THROWS_WITH_AS((ktnn::data::DataLoader<decltype(data), Space>(data, {.batch_size = 0})),
                       doctest::Contains("batch size must be positive"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(loader, ktnn_test::spaces);
