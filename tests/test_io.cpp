// ktnn::save and ktnn::load, and the safetensors code under them (ktnn/io):
// round trips, PyTorch's F16 and BF16 rounding, every kind of hostile file
// (each a ktnn::Error naming the file, the tensor and the problem, with the
// model untouched), and writes that fail at each stage or on a full disk
// (the old file stays whole, no temporary file stays behind).

#include "fuzz/fuzz_model.hpp"
#include "helpers.hpp"

#include <ktnn/io/model_file.hpp>

#include <sys/mount.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {
namespace fs = std::filesystem;
using ktnn::io::DType;
using ktnn::io::detail::WriteStage;
using namespace std::string_literals;

/// The fuzz target's model: parameters, and state with an I64 count.
using Net =
    ktnn::Sequential<ktnn::Dense<3, 4, ktnn::ReLU>, ktnn::BatchNorm1d<4>, ktnn::Dense<4, 2>>;
template <class T, class Space>
using NetModel = ktnn::Model<Net, T, Space>;

/// A fresh folder, one per process (two test binaries run this file), removed
/// at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(std::string const& name, fs::path const& base = fs::temp_directory_path())
      : path(base / ("ktnn_test_io_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  TempDir(TempDir const&) = delete;
  TempDir& operator=(TempDir const&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(std::string const& name = "model.safetensors") const {
    return (path / name).string();
  }
  /// The names in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (auto const& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string read_bytes(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(std::string const& path, std::string const& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out);
}

/// The bit patterns of a View's values, for comparisons that see NaN and -0.
template <class View>
std::vector<std::uint64_t> bits(View const& v) {
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < host.extent(0); ++i) {
    auto const x = host(i);
    if constexpr (sizeof x == 4)
      out.push_back(std::bit_cast<std::uint32_t>(x));
    else
      out.push_back(std::bit_cast<std::uint64_t>(x));
  }
  return out;
}

/// A model's parameters and state, bit for bit.
template <class Model>
std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>> snapshot(Model const& m) {
  return {bits(m.parameters()), bits(m.state())};
}

/// Gives every parameter and state element a value of its own (a fresh
/// model's state is zeros and ones), and num_batches_tracked a count.
template <class Model>
void scramble(Model& model, std::uint64_t seed) {
  ktnn_test::fill_uniform(model.parameters(), seed);
  ktnn_test::fill_uniform(model.state(), seed + 1, 0.5, 2.0);
  ktnn_test::set_element(model.state(), 7.0, std::size_t(8));
}

/// Sets the first values.size() parameters, and the rest to zero.
template <class Model>
void set_parameters(Model& model, std::vector<float> const& values) {
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, model.parameters());
  for (std::size_t i = 0; i < host.extent(0); ++i) host(i) = i < values.size() ? values[i] : 0.0f;
  Kokkos::deep_copy(model.parameters(), host);
}

template <class T>
std::string le_bytes(std::vector<T> const& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// The bytes of a safetensors file: the 8-byte little-endian length of
/// `json`, `json`, then `data`.
std::string with_length(std::uint64_t n, std::string const& rest) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + rest;
}
std::string file_bytes(std::string const& json, std::string const& data = "") {
  return with_length(json.size(), json + data);
}

/// One tensor of a hand-made file: its dtype and shape as header text, and its
/// bytes.
struct Spec {
  std::string name, dtype, shape, data;
};

/// The file of `specs`, each tensor's bytes after the one before.
std::string file_of(std::vector<Spec> const& specs) {
  std::string json = R"({"__metadata__":{"format":"pt"})", data;
  for (auto const& s : specs) {
    json += ",\"" + s.name + "\":{\"dtype\":\"" + s.dtype + "\",\"shape\":" + s.shape +
            ",\"data_offsets\":[" + std::to_string(data.size()) + "," +
            std::to_string(data.size() + s.data.size()) + "]}";
    data += s.data;
  }
  return file_bytes(json + "}", data);
}

std::string shape_json(std::vector<std::size_t> const& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    // Two appends, not "a" + to_string(): GCC 12 warns falsely (-Wrestrict) on that.
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// The tensors of `model` as PyTorch writes them: F32, and I64 for the count.
template <class Model>
std::vector<Spec> specs_of(Model const& model) {
  std::vector<Spec> out;
  auto add = [&](auto const& index, std::vector<double> const& values) {
    for (auto const& info : index) {
      std::vector<float> f;
      std::vector<std::int64_t> n;
      for (std::size_t i = 0; i < info.size(); ++i) {
        f.push_back(float(values[info.offset + i]));
        n.push_back(std::int64_t(values[info.offset + i]));
      }
      bool const count = info.name.ends_with("num_batches_tracked");
      out.push_back({info.name, count ? "I64" : "F32", shape_json(info.shape),
                     count ? le_bytes(n) : le_bytes(f)});
    }
  };
  add(model.parameter_index(), ktnn_test::to_vector(model.parameters()));
  add(model.state_index(), ktnn_test::to_vector(model.state()));
  return out;
}

Spec& spec(std::vector<Spec>& specs, std::string const& name) {
  for (auto& s : specs)
    if (s.name == name) return s;
  FAIL("no tensor " << name);
  return specs.front();
}

/// f must throw ktnn::Error, and its message must hold every one of `parts`.
template <class F>
void check_error(F const& f, std::vector<std::string> const& parts) {
  CHECK_THROWS_AS(f(), ktnn::Error);
  std::string message;
  try {
    f();
  } catch (ktnn::Error const& e) {
    message = e.what();
  }
  for (auto const& part : parts)
    CHECK_MESSAGE(message.find(part) != std::string::npos,
                  "the message \"" << message << "\" lacks \"" << part << "\"");
}

/// Sets the write stage that fails, for one scope.
struct InjectedFault {
  explicit InjectedFault(WriteStage stage) { ktnn::io::detail::injected_write_fault() = stage; }
  InjectedFault(InjectedFault const&) = delete;
  InjectedFault& operator=(InjectedFault const&) = delete;
  ~InjectedFault() { ktnn::io::detail::injected_write_fault() = WriteStage::none; }
};

std::size_t open_descriptors() {
  return std::size_t(std::distance(fs::directory_iterator("/proc/self/fd"), {}));
}

// Float bits in, F16 or BF16 bits out: computed by hand from IEEE 754
// (round to nearest, ties to even; past the largest finite value, Inf; NaN
// stays NaN), and what torch.Tensor.to gives for each (checked with PyTorch
// 2 in the build root).
struct Rounding {
  std::uint32_t in;
  std::uint16_t out;
};
constexpr Rounding half_rounding[] = {
    {0x3f800000, 0x3c00},  // 1
    {0xc0000000, 0xc000},  // -2
    {0x3dcccccd, 0x2e66},  // 0.1f
    {0xbeaaaaab, 0xb555},  // -1/3
    {0x3f801000, 0x3c00},  // 1 + 2^-11: a tie, to the even 1
    {0x3f803000, 0x3c02},  // 1 + 3 * 2^-11: a tie, to the even 1 + 2^-9
    {0x3f801001, 0x3c01},  // just past the tie: up
    {0x477fe000, 0x7bff},  // 65504, the largest finite half
    {0x477fefff, 0x7bff},  // just under 65520: down to 65504
    {0x477ff000, 0x7c00},  // 65520, a tie between 65504 (odd) and 2^16: Inf
    {0x49742400, 0x7c00},  // 1e6: Inf
    {0xc9742400, 0xfc00},  // -1e6: -Inf
    {0x7f800000, 0x7c00},  // Inf
    {0xff800000, 0xfc00},  // -Inf
    {0x7fc00000, 0x7e00},  // NaN: the quiet NaN
    {0xffc00000, 0xfe00},  // -NaN keeps its sign
    {0x7f800001, 0x7e00},  // a signalling NaN becomes quiet, not Inf
    {0x00000000, 0x0000},  // 0
    {0x80000000, 0x8000},  // -0
    {0x33800000, 0x0001},  // 2^-24, the smallest subnormal
    {0x33000000, 0x0000},  // 2^-25, a tie between 0 and 2^-24: 0
    {0x33000001, 0x0001},  // just past it: 2^-24
    {0x32ffffff, 0x0000},  // just under it: 0
    {0x33c00000, 0x0002},  // 3 * 2^-25, a tie: to the even 2 * 2^-24
    {0x387fc000, 0x03ff},  // the largest subnormal
    {0x387fe000, 0x0400},  // a tie past it: up to the smallest normal (even)
    {0x38800000, 0x0400},  // 2^-14, the smallest normal
};
constexpr Rounding bf16_rounding[] = {
    {0x3f800000, 0x3f80},  // 1
    {0x3dcccccd, 0x3dcd},  // 0.1f
    {0x3f808000, 0x3f80},  // 1 + 2^-8: a tie, to the even 1
    {0x3f818000, 0x3f82},  // 1 + 3 * 2^-8: a tie, to the even 1 + 2^-6
    {0x3f808001, 0x3f81},  // just past the tie: up
    {0x7f7f0000, 0x7f7f},  // the largest finite bfloat16
    {0x7f7f7fff, 0x7f7f},  // just under the tie past it: down
    {0x7f7f8000, 0x7f80},  // the tie (odd below): Inf
    {0x7f7fffff, 0x7f80},  // FLT_MAX: Inf
    {0x7f800000, 0x7f80},  // Inf
    {0xff800000, 0xff80},  // -Inf
    {0x7fc00000, 0x7fc0},  // NaN (PyTorch's scalar c10::BFloat16 gives this)
    {0x80000000, 0x8000},  // -0
    {0x00000001, 0x0000},  // the smallest float subnormal: 0
    {0x00008000, 0x0000},  // a tie between 0 and 2^-133: 0
    {0x00010000, 0x0001},  // 2^-133, the smallest bfloat16 subnormal
    {0x00018000, 0x0002},  // a tie: to the even 2 * 2^-133
};

bool is_half_nan(std::uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}
bool is_bf16_nan(std::uint16_t b) {
  return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0;
}

/// x rounded to nearest, ties to even, in a binary format with `mantissa`
/// stored bits, smallest normal 2^emin and largest finite `max` (beyond which
/// Inf): computed in double, where it is exact, independently of the bit
/// manipulation under test.
double reference_rounding(float x, int mantissa, int emin, double max) {
  if (!std::isfinite(x)) return x;
  double const a = std::fabs(double(x));
  int e = emin;
  if (a >= std::ldexp(1.0, emin)) {
    std::frexp(a, &e);
    e -= 1;  // a in [2^e, 2^(e + 1))
  }
  double const ulp = std::ldexp(1.0, e - mantissa);
  double r = std::nearbyint(a / ulp) * ulp;
  if (r > max) r = std::numeric_limits<double>::infinity();
  return std::copysign(r, double(x));
}

}  // namespace

TEST_CASE("F16 and BF16 conversions round as PyTorch does") {
  namespace iod = ktnn::io::detail;
  for (auto [in, out] : half_rounding) {
    INFO("float bits 0x" << std::hex << in);
    CHECK(iod::float_to_half(std::bit_cast<float>(in)) == out);
  }
  for (auto [in, out] : bf16_rounding) {
    INFO("float bits 0x" << std::hex << in);
    CHECK(iod::float_to_bf16(std::bit_cast<float>(in)) == out);
  }
  // Every NaN stays a NaN with its sign (PyTorch's vectorized kernels write
  // 0xffff for every NaN, its scalar code 0x7fc0: only NaN-ness is common).
  for (std::uint32_t nan : {0x7f800001u, 0x7fffffffu, 0xffc00000u, 0xff800001u}) {
    INFO("float bits 0x" << std::hex << nan);
    CHECK(is_half_nan(iod::float_to_half(std::bit_cast<float>(nan))));
    CHECK(is_bf16_nan(iod::float_to_bf16(std::bit_cast<float>(nan))));
    CHECK((iod::float_to_bf16(std::bit_cast<float>(nan)) >> 15) == (nan >> 31));
  }
  // Back to float: the values of F16 bits.
  std::pair<std::uint16_t, std::uint32_t> const half_values[] = {
      {0x0001, 0x33800000}, {0x8001, 0xb3800000}, {0x03ff, 0x387fc000}, {0x0400, 0x38800000},
      {0x3c00, 0x3f800000}, {0x7bff, 0x477fe000}, {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},
      {0x7e00, 0x7fc00000}, {0x8000, 0x80000000}, {0x0000, 0x00000000}, {0xc000, 0xc0000000}};
  for (auto [h, f] : half_values) {
    INFO("half bits 0x" << std::hex << h);
    CHECK(std::bit_cast<std::uint32_t>(iod::half_to_float(h)) == f);
  }
  CHECK(std::bit_cast<std::uint32_t>(iod::bf16_to_float(0x7f7f)) == 0x7f7f0000u);
  CHECK(std::bit_cast<std::uint32_t>(iod::bf16_to_float(0x8001)) == 0x80010000u);
  CHECK(std::isnan(iod::bf16_to_float(0x7fc0)));

  // Every F16 and BF16 value converts to float and back to itself (NaNs to
  // a NaN of the same sign).
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    auto const b = std::uint16_t(h);
    float const f = iod::half_to_float(b), g = iod::bf16_to_float(b);
    if (is_half_nan(b)) {
      CHECK(std::isnan(f));
      CHECK(is_half_nan(iod::float_to_half(f)));
      CHECK(std::signbit(f) == bool(b >> 15));
    } else if (iod::float_to_half(f) != b) {
      FAIL_CHECK("half 0x" << std::hex << h << " does not come back");
    }
    if (is_bf16_nan(b)) {
      CHECK(std::isnan(g));
      CHECK(is_bf16_nan(iod::float_to_bf16(g)));
    } else if (iod::float_to_bf16(g) != b) {
      FAIL_CHECK("bf16 0x" << std::hex << h << " does not come back");
    }
  }

  // Every tie between neighbouring values, and the floats either side of it:
  // ties go to the even neighbour, the rest to the nearer one.
  int wrong = 0;
  for (std::uint32_t h = 0; h < 0x7c00; ++h)
    for (std::uint32_t sign : {0u, 0x8000u}) {
      double const lo = iod::half_to_float(std::uint16_t(h));
      double const hi = h + 1 == 0x7c00 ? 65536.0 : iod::half_to_float(std::uint16_t(h + 1));
      float const mid = float((lo + hi) / 2);  // exact in float
      wrong += double(mid) != (lo + hi) / 2;
      auto const round = [&](float x) { return iod::float_to_half(sign ? -x : x); };
      std::uint16_t const even = std::uint16_t((h & 1u ? h + 1 : h) | sign);
      wrong += round(mid) != even;
      wrong += round(std::nextafter(mid, 0.0f)) != (h | sign);
      wrong += round(std::nextafter(mid, 1e30f)) != ((h + 1) | sign);
    }
  for (std::uint32_t b = 0; b < 0x7f80; ++b)
    for (std::uint32_t sign : {0u, 0x80000000u}) {
      std::uint32_t const mid = (b << 16) | 0x8000u | sign;  // halfway to b + 1
      std::uint16_t const s = std::uint16_t(sign >> 16);
      wrong += iod::float_to_bf16(std::bit_cast<float>(mid)) != ((b & 1u ? b + 1 : b) | s);
      wrong += iod::float_to_bf16(std::bit_cast<float>(mid - 1)) != (b | s);
      wrong += iod::float_to_bf16(std::bit_cast<float>(mid + 1)) != ((b + 1) | s);
    }
  CHECK(wrong == 0);

  // A sweep over all floats against rounding computed in double.
  for (std::uint64_t u = 0; u <= 0xffffffffu; u += 4099) {
    float const x = std::bit_cast<float>(std::uint32_t(u));
    if (std::isnan(x)) continue;
    double const h = iod::half_to_float(iod::float_to_half(x));
    double const b = iod::bf16_to_float(iod::float_to_bf16(x));
    double const h_ref = reference_rounding(x, 10, -14, 65504.0);
    double const b_ref = reference_rounding(x, 7, -126, double(std::bit_cast<float>(0x7f7f0000u)));
    if (h != h_ref || std::signbit(h) != std::signbit(h_ref))
      FAIL_CHECK("F16 of float bits 0x" << std::hex << u << ": " << h << ", expected " << h_ref);
    if (b != b_ref || std::signbit(b) != std::signbit(b_ref))
      FAIL_CHECK("BF16 of float bits 0x" << std::hex << u << ": " << b << ", expected " << b_ref);
  }
}

TEST_CASE_TEMPLATE_DEFINE("the fuzz target's model is the real model's layout", Space,
                          io_fuzz_model) {
  NetModel<float, Space> model(1);
  auto same = [](auto const& real, auto const& written) {
    REQUIRE(real.size() == written.size());
    for (std::size_t i = 0; i < real.size(); ++i) {
      CHECK(real[i].name == written[i].name);
      CHECK(real[i].offset == written[i].offset);
      CHECK(real[i].shape == written[i].shape);
    }
  };
  same(model.parameter_index(), ktnn_fuzz::parameter_index());
  same(model.state_index(), ktnn_fuzz::state_index());
  CHECK(Net::name() == ktnn_fuzz::model_name);
  CHECK(NetModel<float, Space>::param_count == ktnn_fuzz::param_count);
  CHECK(NetModel<float, Space>::state_count == ktnn_fuzz::state_count);
}
TEST_CASE_TEMPLATE_APPLY(io_fuzz_model, ktnn_test::spaces);

namespace {
/// Saves a model of T with `dtype`, loads it into a fresh one of U, and
/// checks every value against `expected` (bits of U).
template <class T, class Space>
void round_trip(TempDir const& dir) {
  NetModel<T, Space> saved(1);
  scramble(saved, 3);
  ktnn::save(saved, dir.file());
  NetModel<T, Space> loaded(2);
  REQUIRE(snapshot(loaded) != snapshot(saved));
  ktnn::load(loaded, dir.file());
  CHECK(snapshot(loaded) == snapshot(saved));

  // The file: the model's own dtype, the count as I64, ktnn's metadata.
  auto const file = ktnn::io::read_file(dir.file());
  CHECK(file.parsed.tensors.size() == 9);
  for (auto const& t : file.parsed.tensors) {
    INFO(t.name);
    bool const count = t.name == "2.num_batches_tracked";
    CHECK(t.dtype == (count ? DType::I64 : std::is_same_v<T, float> ? DType::F32 : DType::F64));
  }
  auto const* count = file.parsed.find("2.num_batches_tracked");
  REQUIRE(count != nullptr);
  CHECK(count->shape.empty());
  CHECK(ktnn::io::detail::element(DType::I64, file.parsed.data.data() + count->begin, 0) == 7.0);
  CHECK(file.parsed.metadata.at("format") == "pt");
  CHECK(file.parsed.metadata.at("ktnn.architecture") == Net::name());
  CHECK(file.parsed.metadata.at("ktnn.scalar") == (std::is_same_v<T, float> ? "float" : "double"));

  // The same from the bytes in memory, without the file.
  NetModel<T, Space> from_memory(4);
  ktnn::load(from_memory, file.parsed);
  CHECK(snapshot(from_memory) == snapshot(saved));
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("save then load: bitwise in the model's own type", Space, io_round_trip) {
  TempDir dir("round_trip");
  round_trip<float, Space>(dir);
  round_trip<double, Space>(dir);

  // Across types: a float model through F64 is exact; a double model through
  // F32, or into a float model, is rounded to float.
  NetModel<float, Space> f(1);
  scramble(f, 5);
  ktnn::save(f, dir.file(), {.dtype = DType::F64});
  NetModel<float, Space> f2(2);
  ktnn::load(f2, dir.file());
  CHECK(snapshot(f2) == snapshot(f));

  NetModel<double, Space> d(1);
  scramble(d, 6);
  ktnn::save(d, dir.file(), {.dtype = DType::F32, .metadata = {{"epoch", "3"}}});
  CHECK(ktnn::io::read_file(dir.file()).parsed.metadata.at("epoch") == "3");
  NetModel<double, Space> d2(2);
  NetModel<float, Space> d3(2);
  ktnn::load(d2, dir.file());
  ktnn::save(d, dir.file());  // F64
  ktnn::load(d3, dir.file());
  auto const source = ktnn_test::to_vector(d.parameters());
  auto const through_f32 = ktnn_test::to_vector(d2.parameters());
  auto const into_float = ktnn_test::to_vector(d3.parameters());
  for (std::size_t i = 0; i < source.size(); ++i) {
    CHECK(through_f32[i] == double(float(source[i])));
    CHECK(into_float[i] == double(float(source[i])));
  }
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}
TEST_CASE_TEMPLATE_APPLY(io_round_trip, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("save as F16 or BF16: PyTorch's bits in the file, their values loaded",
                          Space, io_half) {
  TempDir dir("half");
  for (DType dtype : {DType::F16, DType::BF16}) {
    INFO(ktnn::io::dtype_name(dtype));
    bool const half = dtype == DType::F16;
    std::vector<Rounding> table(half ? std::begin(half_rounding) : std::begin(bf16_rounding),
                                half ? std::end(half_rounding) : std::end(bf16_rounding));
    std::vector<float> values;
    for (auto r : table) values.push_back(std::bit_cast<float>(r.in));
    REQUIRE(values.size() <= ktnn_fuzz::param_count);
    NetModel<float, Space> model(1);
    set_parameters(model, values);
    ktnn::save(model, dir.file(), {.dtype = dtype});

    // The file holds the expected bits, tensor by tensor (zeros after the
    // table).
    auto expected = [&](std::size_t i) {
      return i < table.size() ? table[i].out : std::uint16_t(0);
    };
    auto const file = ktnn::io::read_file(dir.file());
    for (auto const& info : model.parameter_index()) {
      auto const* t = file.parsed.find(info.name);
      REQUIRE(t != nullptr);
      CHECK(t->dtype == dtype);
      CHECK(t->shape == info.shape);
      for (std::size_t j = 0; j < info.size(); ++j) {
        std::uint16_t stored;
        std::memcpy(&stored, file.parsed.data.data() + t->begin + 2 * j, 2);
        INFO(info.name << " element " << j);
        CHECK(stored == expected(info.offset + j));
      }
    }
    CHECK(file.parsed.find("2.num_batches_tracked")->dtype == DType::I64);

    // Loaded: exactly the values of those bits (NaN, -0 and Inf included).
    NetModel<float, Space> loaded(2);
    ktnn::load(loaded, dir.file());
    auto const got = bits(loaded.parameters());
    for (std::size_t i = 0; i < got.size(); ++i) {
      float const want = half ? ktnn::io::detail::half_to_float(expected(i))
                              : ktnn::io::detail::bf16_to_float(expected(i));
      INFO("parameter " << i);
      CHECK(got[i] == std::bit_cast<std::uint32_t>(want));
    }
    CHECK(bits(loaded.state()) == bits(model.state()));
  }
}
TEST_CASE_TEMPLATE_APPLY(io_half, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("hostile files: an Error naming the file, the tensor and the problem",
                          Space, io_hostile) {
  TempDir dir("hostile");
  std::string const path = dir.file("hostile.safetensors");
  NetModel<float, Space> model(1);
  scramble(model, 5);
  auto const before = snapshot(model);
  auto expect = [&](std::string const& bytes, std::vector<std::string> parts,
                    ktnn::LoadOptions options = {}) {
    write_bytes(path, bytes);
    parts.push_back(path);
    check_error([&] { ktnn::load(model, path, options); }, parts);
    CHECK(snapshot(model) == before);
  };
  std::string const w = le_bytes(std::vector<float>(12, 0.5f));  // 0.weight, F32 [4, 3]
  auto weight = [&](std::string const& fields, std::string const& data) {
    return file_bytes(R"({"0.weight":{)" + fields + "}}", data);
  };
  // Arrays nested 100,000 deep (refused as the parser meets them: as a tree
  // they would take megabytes, and printing them recursed once per level),
  // and 12 deep (within the limit: summarized in messages).
  std::string const deep = std::string(100000, '[') + std::string(100000, ']');
  std::string const nested = std::string(12, '[') + "4" + std::string(12, ']');

  struct Case {
    char const* what;
    std::string bytes;
    std::vector<std::string> parts;
  };
  std::vector<Case> const cases = {
      {"an empty file", "", {"ktnn::io::safetensors", "truncated: 0 bytes"}},
      {"fewer than 8 bytes", "\x05\x00\x00\x00\x00"s, {"truncated: 5 bytes", "8-byte"}},
      {"a header length past the end",
       with_length(100, "{}"),
       {"truncated: the header length is 100 bytes but only 2 follow it"}},
      {"a header length of 2^63",
       with_length(std::uint64_t(1) << 63, "{}"),
       {"the header length is 9223372036854775808 bytes, over the format's limit"}},
      {"a header length of 2^64 - 1",
       with_length(~std::uint64_t(0), "{}"),
       {"the header length is 18446744073709551615 bytes"}},
      {"a header that is not JSON",
       file_bytes(R"({"0.weight": {)"),
       {"the header is not valid JSON"}},
      {"a header of binary bytes",
       file_bytes("\xff\xfe\x00\x01"s),
       {"the header is not valid JSON"}},
      {"a header of a JSON array", file_bytes("[1, 2]"), {"the header is array, not an object"}},
      {"a header of a JSON string", file_bytes("\"x\""), {"the header is string, not an object"}},
      {"__metadata__ a string",
       file_bytes(R"({"__metadata__": "x"})"),
       {"__metadata__ is string, not an object"}},
      {"__metadata__ with a number",
       file_bytes(R"({"__metadata__": {"format": "pt", "epoch": 3}})"),
       {"__metadata__ 'epoch' is number, not a string"}},
      {"__metadata__ twice",
       file_bytes(R"({"__metadata__": {}, "__metadata__": {}})"),
       {"__metadata__ appears twice"}},
      {"a tensor entry that is not an object",
       file_bytes(R"({"0.weight": [1]})"),
       {"tensor '0.weight' is array, not an object"}},
      {"no dtype",
       weight(R"("shape":[4,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight' has no dtype"}},
      {"no shape",
       weight(R"("dtype":"F32","data_offsets":[0,48])", w),
       {"tensor '0.weight' has no shape"}},
      {"no data_offsets",
       weight(R"("dtype":"F32","shape":[4,3])", w),
       {"tensor '0.weight' has no data_offsets"}},
      {"an unknown dtype",
       weight(R"("dtype":"F8_E4M3","shape":[4,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight' has dtype 'F8_E4M3', which ktnn does not read"}},
      {"a dtype that is not a string",
       weight(R"("dtype":4,"shape":[4,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': dtype is 4, not a string"}},
      {"a shape that is not an array",
       weight(R"("dtype":"F32","shape":12,"data_offsets":[0,48])", w),
       {"tensor '0.weight': shape is 12, not an array"}},
      {"a negative extent",
       weight(R"("dtype":"F32","shape":[-4,-3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': shape holds -4, expected a non-negative integer"}},
      {"a fractional extent",
       weight(R"("dtype":"F32","shape":[4.5,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': shape holds 4.5, expected a non-negative integer"}},
      {"an extent of 2^64",
       weight(R"("dtype":"F32","shape":[18446744073709551616,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': shape holds 1.8446744073709552e+19"}},
      {"extents whose product overflows",
       weight(R"("dtype":"F32","shape":[4294967296,4294967296,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': F32 of shape [4294967296,4294967296,3] needs more than 2^64 bytes, "
        "but data_offsets give 48"}},
      {"extents whose byte count overflows",
       weight(R"("dtype":"F64","shape":[2305843009213693952,4],"data_offsets":[0,48])", w),
       {"tensor '0.weight': F64 of shape", "needs more than 2^64 bytes"}},
      {"a shape nested 100000 deep",
       weight(R"("dtype":"F32","data_offsets":[0,48],"shape":)" + deep, w),
       {"the header nests deeper than 16 levels"}},
      {"__metadata__ nested 100000 deep",
       file_bytes(R"({"__metadata__":)" + deep + "}"),
       {"the header nests deeper than 16 levels"}},
      {"a header nested 100000 deep", file_bytes(deep), {"the header nests deeper than 16 levels"}},
      {"an extent that is an array",
       weight(R"("dtype":"F32","data_offsets":[0,48],"shape":[[4],3])", w),
       {"tensor '0.weight': shape holds [4], expected a non-negative integer"}},
      {"a shape nested 12 deep",
       weight(R"("dtype":"F32","data_offsets":[0,48],"shape":)" + nested, w),
       {"tensor '0.weight': shape holds an array of 1 elements"}},
      {"one data offset",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0])", w),
       {"tensor '0.weight': data_offsets is [0], expected [begin, end]"}},
      {"three data offsets",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,48,96])", w),
       {"tensor '0.weight': data_offsets is [0,48,96], expected [begin, end]"}},
      {"data offsets that are not an array",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":{"begin":0})", w),
       {"tensor '0.weight': data_offsets is an object of 1 members, expected [begin, end]"}},
      {"data offsets nested 100000 deep",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":)" + deep, w),
       {"the header nests deeper than 16 levels"}},
      {"data offsets nested 12 deep",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":)" + nested, w),
       {"tensor '0.weight': data_offsets is an array of 1 elements"}},
      {"a data offset that is a string",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,"48"])", w),
       {"tensor '0.weight': data_offsets holds \"48\", expected a non-negative integer"}},
      {"a negative data offset",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[-8,40])", w),
       {"tensor '0.weight': data_offsets holds -8"}},
      {"a fractional data offset",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,47.5])", w),
       {"tensor '0.weight': data_offsets holds 47.5"}},
      {"reversed data offsets",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[48,0])", w),
       {"tensor '0.weight': data_offsets [48, 0] are reversed"}},
      {"data offsets past the data",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,96])", w),
       {"tensor '0.weight': data_offsets [0, 96] lie outside the 48 bytes of data"}},
      {"data offsets at 2^64 - 1",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[18446744073709551567,)"
              R"(18446744073709551615])",
              w),
       {"tensor '0.weight': data_offsets [18446744073709551567, 18446744073709551615] lie "
        "outside"}},
      {"a byte count that is not shape times dtype",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,44])", w.substr(0, 44)),
       {"tensor '0.weight': F32 of shape [4,3] needs 48 bytes, but data_offsets give 44"}},
      {"F32 bytes under an F16 dtype",
       weight(R"("dtype":"F16","shape":[4,3],"data_offsets":[0,48])", w),
       {"tensor '0.weight': F16 of shape [4,3] needs 24 bytes, but data_offsets give 48"}},
      {"overlapping tensors",
       file_bytes(R"({"0.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]},)"
                  R"("0.bias":{"dtype":"F32","shape":[4],"data_offsets":[40,56]}})",
                  w + w.substr(0, 8)),
       {"tensor '0.bias' starts at byte 40 of the data, expected 48",
        "overlaps the tensor before it"}},
      {"a tensor inside another",
       file_bytes(R"({"0.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]},)"
                  R"("0.bias":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})",
                  w),
       {"tensor '0.bias' starts at byte 16 of the data, expected 48",
        "overlaps the tensor before it"}},
      {"a gap between tensors",
       file_bytes(R"({"0.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]},)"
                  R"("0.bias":{"dtype":"F32","shape":[4],"data_offsets":[52,68]}})",
                  w + w.substr(0, 20)),
       {"tensor '0.bias' starts at byte 52 of the data, expected 48 (a gap before it)"}},
      {"a gap before the first tensor",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[4,52])", "abcd" + w),
       {"tensor '0.weight' starts at byte 4 of the data, expected 0 (a gap before it)"}},
      {"trailing bytes",
       weight(R"("dtype":"F32","shape":[4,3],"data_offsets":[0,48])", w + "tail"),
       {"the tensors end at byte 48 but the data has 52 bytes"}},
      {"a tensor named twice",
       file_bytes(R"({"0.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]},)"
                  R"("0.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[48,96]}})",
                  w + w),
       {"tensor '0.weight' appears twice in the header"}},
  };
  for (auto const& c : cases) {
    INFO(c.what);
    expect(c.bytes, c.parts);
  }

  // Files of the model's own tensors, one thing wrong each; the failing
  // tensor is read late, after others were converted.
  NetModel<float, Space> source(9);
  scramble(source, 11);
  auto const good = specs_of(source);
  {
    // The helpers make a file the model takes whole.
    NetModel<float, Space> fresh(2);
    write_bytes(path, file_of(good));
    ktnn::load(fresh, path);
    CHECK(snapshot(fresh) == snapshot(source));
  }
  {
    INFO("a tensor of the wrong shape");
    auto specs = good;
    spec(specs, "3.weight").shape = "[4,2]";  // as many bytes: only the model can tell
    expect(file_of(specs),
           {"ktnn::load", "tensor '3.weight' has shape [4, 2] in the file, the model's is [2, 4]"});
    spec(specs, "3.weight").shape = "[2,4]";
    spec(specs, "2.num_batches_tracked").shape = "[1]";
    expect(file_of(specs), {"tensor '2.num_batches_tracked' has shape [1] in the file, the "
                            "model's is []"});
  }
  for (char const* missing : {"3.bias", "2.num_batches_tracked"}) {
    INFO("a missing tensor: " << missing);
    auto specs = good;
    std::erase_if(specs, [&](Spec const& s) { return s.name == missing; });
    expect(file_of(specs), {"the model's tensor '"s + missing + "'", "is not in the file",
                            "which has 8 tensors", Net::name()});
  }
  {
    INFO("an extra tensor");
    auto specs = good;
    specs.push_back({"4.weight", "F32", "[2]", le_bytes(std::vector<float>{1, 2})});
    expect(file_of(specs), {"the file's tensor '4.weight' is not in the model", Net::name(),
                            "(LoadOptions::strict)"});
    // Not strict: loaded, the extra tensor ignored.
    NetModel<float, Space> lenient(2);
    ktnn::load(lenient, path, {.strict = false});
    CHECK(snapshot(lenient) == snapshot(source));
    // ktnn's own extra tensors ("ktnn.*") pass even when strict.
    specs.back().name = "ktnn.extra";
    write_bytes(path, file_of(specs));
    NetModel<float, Space> strict(2);
    ktnn::load(strict, path);
    CHECK(snapshot(strict) == snapshot(source));
  }
  {
    INFO("values that are not finite");
    float const nan = std::numeric_limits<float>::quiet_NaN();
    float const inf = std::numeric_limits<float>::infinity();
    auto specs = good;
    spec(specs, "2.running_var").data = le_bytes(std::vector<float>{1, 2, nan, 4});
    ktnn::LoadOptions const checked{.check_finite = true};
    expect(file_of(specs), {"tensor '2.running_var' element 2 is nan", "(check_finite is on)"},
           checked);
    // Unchecked, the NaN is loaded as it is.
    NetModel<float, Space> unchecked(2);
    ktnn::load(unchecked, path);
    CHECK(std::isnan(ktnn_test::to_vector(unchecked.state())[6]));

    specs = good;
    spec(specs, "3.bias").data = le_bytes(std::vector<float>{0, -inf});
    expect(file_of(specs), {"tensor '3.bias' element 1 is -inf", "(check_finite is on)"}, checked);
    // An F16 Inf, and an F64 beyond float's range: finite in the file, Inf
    // in a float model.
    specs = good;
    spec(specs, "3.bias") = {"3.bias", "F16", "[2]",
                             le_bytes(std::vector<std::uint16_t>{0, 0x7c00})};
    expect(file_of(specs), {"tensor '3.bias' element 1 is inf"}, checked);
    spec(specs, "3.bias") = {"3.bias", "F64", "[2]", le_bytes(std::vector<double>{1e300, 0})};
    expect(file_of(specs),
           {"tensor '3.bias' element 0 is 1e+300 in the file, beyond the model's "
            "type (check_finite is on)"},
           checked);
  }
  {
    INFO("a folder, and no file");
    check_error([&] { ktnn::load(model, dir.path.string()); },
                {"ktnn::io::read_file", dir.path.string(), "not a regular file"});
    std::string const missing = dir.file("missing.safetensors");
    check_error([&] { ktnn::load(model, missing); },
                {"ktnn::io::read_file", missing, "cannot open: No such file or directory"});
    CHECK(snapshot(model) == before);
  }
}
TEST_CASE_TEMPLATE_APPLY(io_hostile, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a count a file made huge or NaN is saved as a valid int64", Space,
                          io_count) {
  TempDir dir("count");
  for (auto [value, saved] : {std::pair{1e30f, std::numeric_limits<std::int64_t>::max()},
                              std::pair{-1e30f, std::numeric_limits<std::int64_t>::min()},
                              std::pair{std::numeric_limits<float>::quiet_NaN(), std::int64_t(0)},
                              std::pair{42.0f, std::int64_t(42)}}) {
    INFO("num_batches_tracked " << value);
    NetModel<float, Space> model(1);
    auto specs = specs_of(model);
    spec(specs, "2.num_batches_tracked") = {"2.num_batches_tracked", "F32", "[]",
                                            le_bytes(std::vector<float>{value})};
    write_bytes(dir.file(), file_of(specs));
    ktnn::load(model, dir.file());
    ktnn::save(model, dir.file());
    auto const file = ktnn::io::read_file(dir.file());
    auto const* t = file.parsed.find("2.num_batches_tracked");
    REQUIRE(t != nullptr);
    CHECK(t->dtype == DType::I64);
    std::int64_t stored;
    std::memcpy(&stored, file.parsed.data.data() + t->begin, 8);
    CHECK(stored == saved);
  }
}
TEST_CASE_TEMPLATE_APPLY(io_count, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("saves that cannot be done", Space, io_save_errors) {
  TempDir dir("save_errors");
  NetModel<float, Space> model(1);
  check_error([&] { ktnn::save(model, dir.file(), {.dtype = DType::I64}); },
              {"ktnn::save", dir.file(), "SaveOptions::dtype is I64"});
  std::string const nowhere = dir.file("no/such/folder/model.safetensors");
  check_error([&] { ktnn::save(model, nowhere); },
              {"ktnn::io::write_file", nowhere, "cannot create a temporary file in '",
               "no/such/folder'", "No such file or directory"});
  // Over a folder: the rename fails and the temporary file goes.
  fs::create_directory(dir.path / "folder");
  check_error([&] { ktnn::save(model, dir.file("folder")); },
              {"renaming the temporary file over it failed", "Is a directory", "is unchanged"});
  CHECK(dir.entries() == std::vector<std::string>{"folder"});
}
TEST_CASE_TEMPLATE_APPLY(io_save_errors, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a save that fails at any stage leaves the old file whole", Space,
                          io_atomic) {
  TempDir dir("atomic");
  std::string const path = dir.file();
  NetModel<float, Space> old_model(1), new_model(2);
  scramble(old_model, 3);
  scramble(new_model, 4);
  std::string const folder = dir.path.string();
  std::pair<WriteStage, std::string> const stages[] = {
      {WriteStage::create, "cannot create a temporary file in '" + folder + "'"},
      {WriteStage::write, "writing the temporary file failed (Input/output error)"},
      {WriteStage::sync, "flushing the temporary file to disk failed (Input/output error)"},
      {WriteStage::close, "closing the temporary file failed (Input/output error)"},
      {WriteStage::rename, "renaming the temporary file over it failed (Input/output error)"},
      {WriteStage::sync_directory,
       "written and renamed, but flushing the folder '" + folder + "' failed"},
  };
  for (auto const& [stage, message] : stages) {
    INFO(message);
    fs::remove(path);
    ktnn::save(old_model, path);
    std::string const old_bytes = read_bytes(path);
    std::size_t const descriptors = open_descriptors();
    {
      InjectedFault fault(stage);
      check_error([&] { ktnn::save(new_model, path); }, {"ktnn::io::write_file", path, message});
    }
    CHECK(open_descriptors() == descriptors);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    NetModel<float, Space> loaded(5);
    ktnn::load(loaded, path);
    if (stage == WriteStage::sync_directory) {
      // Renamed before the failure: the new file is in place, complete.
      CHECK(snapshot(loaded) == snapshot(new_model));
    } else {
      CHECK(read_bytes(path) == old_bytes);
      CHECK(snapshot(loaded) == snapshot(old_model));
    }

    // With no file there before, none after (but after the rename).
    fs::remove(path);
    {
      InjectedFault fault(stage);
      CHECK_THROWS_AS(ktnn::save(new_model, path), ktnn::Error);
    }
    CHECK(dir.entries() == (stage == WriteStage::sync_directory
                                ? std::vector<std::string>{"model.safetensors"}
                                : std::vector<std::string>{}));
  }
  // And without a fault the next save works.
  ktnn::save(new_model, path);
  NetModel<float, Space> loaded(5);
  ktnn::load(loaded, path);
  CHECK(snapshot(loaded) == snapshot(new_model));
}
TEST_CASE_TEMPLATE_APPLY(io_atomic, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a full disk: the save fails and the old file stays", Space,
                          io_full_disk) {
  // A 64 KiB tmpfs under the build folder (the working directory of ctest),
  // where the build root lets us mount one.
  TempDir dir("tmpfs", fs::current_path());
  if (::mount("tmpfs", dir.path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k") !=
      0) {
    MESSAGE("no tmpfs at " << dir.path.string() << " (mount: " << std::strerror(errno)
                           << "): the full-disk case rests on the injected write faults");
    return;
  }
  struct Unmount {
    fs::path path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } const unmount{dir.path};

  std::string const path = dir.file();
  NetModel<float, Space> small(1);
  scramble(small, 3);
  ktnn::save(small, path);
  std::string const old_bytes = read_bytes(path);
  // 33,024 floats: 129 KiB of F32, twice what the disk holds.
  ktnn::Model<ktnn::Sequential<ktnn::Dense<128, 256>>, float, Space> big(2);
  check_error([&] { ktnn::save(big, path); },
              {"ktnn::io::write_file", path,
               "writing the temporary file failed (No space left on device)", "is unchanged"});
  CHECK(read_bytes(path) == old_bytes);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  NetModel<float, Space> loaded(5);
  ktnn::load(loaded, path);
  CHECK(snapshot(loaded) == snapshot(small));
  // The space came back: the small model saves again.
  ktnn::save(loaded, path);
  CHECK(read_bytes(path) == old_bytes);
}
TEST_CASE_TEMPLATE_APPLY(io_full_disk, ktnn_test::spaces);
