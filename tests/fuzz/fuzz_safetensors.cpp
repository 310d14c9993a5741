// libFuzzer target for the safetensors reader and ktnn::load's checks: the
// bytes are a file's, parsed by io::parse and, when that accepts them,
// loaded by io::load_tensors (what ktnn::load runs between reading the file and
// copying to the model) into the arenas of the float model of fuzz_model.hpp.
// Besides "no crash, no out-of-bounds access, no undefined behaviour, no
// leak" (ASan, UBSan), it checks the contracts:
//   - every rejection is a ktnn::Error naming the operation and the file;
//   - an accepted file's tensors tile its data exactly, each as many bytes
//     as its shape and dtype need, under names that are unique;
//   - a load that succeeds wrote every value as the file's element converted
//     to float; strict and check_finite only ever refuse more, and what they
//     take is the same;
//   - the loaded model written back (F32 as ktnn::save does, then F64, F16
//     and BF16) parses and loads again to the same values, or to exactly
//     their F16 or BF16 rounding.

#include "fuzz_model.hpp"

#include <ktnn/io/load_tensors.hpp>
#include <ktnn/io/safetensors.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {
namespace io = ktnn::io;
using ktnn_fuzz::TensorSlot;

std::string const file = "fuzz.safetensors";

[[noreturn]] void broken(std::string const& what) {
  std::fprintf(stderr, "fuzz_safetensors: contract broken: %s\n", what.c_str());
  std::abort();
}

void check_message(ktnn::Error const& e, std::string const& operation) {
  std::string const message = e.what();
  if (message.rfind(operation + ": " + file + ": ", 0) != 0)
    broken("the message \"" + message + "\" does not start with the operation and the file");
}

void check_parsed(io::Parsed const& p, std::uint8_t const* data, std::size_t size) {
  if (p.data.data() + p.data.size() != data + size) broken("the data does not end the file");
  std::set<std::string> names;
  std::size_t expected = 0;
  for (auto const& t : p.tensors) {
    if (!names.insert(t.name).second) broken("tensor '" + t.name + "' twice");
    if (t.name == "__metadata__") broken("__metadata__ taken for a tensor");
    if (t.begin != expected || t.end < t.begin) broken("tensor '" + t.name + "' out of place");
    std::size_t bytes = io::dtype_size(t.dtype);
    for (auto e : t.shape)
      if (__builtin_mul_overflow(bytes, e, &bytes)) broken("tensor '" + t.name + "' overflows");
    if (bytes != t.end - t.begin) broken("tensor '" + t.name + "' has the wrong byte count");
    if (p.find(t.name) != &t) broken("find misses tensor '" + t.name + "'");
    expected = t.end;
  }
  if (expected != p.data.size()) broken("the tensors do not fill the data");
}

/// The model's two arenas on the host (parameters, state).
using Arenas = std::array<std::vector<float>, 2>;
std::array<std::vector<TensorSlot> const*, 2> const indices = {&ktnn_fuzz::parameter_index(),
                                                               &ktnn_fuzz::state_index()};

std::vector<std::uint32_t> bits(Arenas const& a) {
  std::vector<std::uint32_t> out;
  for (auto const& arena : a)
    for (float x : arena) out.push_back(std::bit_cast<std::uint32_t>(x));
  return out;
}

/// load_tensors into fresh arenas, or nothing when it refuses the file.
std::optional<Arenas> load(io::Parsed const& p, ktnn::LoadOptions const& options) {
  float const sentinel = std::bit_cast<float>(0x7fa5a5a5u);
  Arenas a = {std::vector<float>(ktnn_fuzz::param_count, sentinel),
              std::vector<float>(ktnn_fuzz::state_count, sentinel)};
  try {
    io::load_tensors(p, ktnn_fuzz::model_name, *indices[0], a[0].data(), *indices[1], a[1].data(),
                     options);
  } catch (ktnn::Error const& e) {
    check_message(e, "ktnn::load");
    return std::nullopt;
  }
  return a;
}

/// The loaded values are the file's elements, converted.
void check_values(io::Parsed const& p, Arenas const& a) {
  for (std::size_t k = 0; k < 2; ++k)
    for (auto const& info : *indices[k]) {
      auto const* t = p.find(info.name);
      if (t == nullptr || t->shape != info.shape) broken("loaded '" + info.name + "' wrongly");
      for (std::size_t i = 0; i < info.size(); ++i) {
        float const want = float(io::detail::element(t->dtype, p.data.data() + t->begin, i));
        if (std::bit_cast<std::uint32_t>(want) !=
            std::bit_cast<std::uint32_t>(a[k][info.offset + i]))
          broken("'" + info.name + "' element " + std::to_string(i) + " is not the file's");
      }
    }
}

/// What a count becomes once written as I64: toward zero, saturating, NaN 0.
float as_count(float x) {
  if (std::isnan(x)) return 0;
  if (x >= 0x1p63f) return float(std::numeric_limits<std::int64_t>::max());
  if (x < -0x1p63f) return float(std::numeric_limits<std::int64_t>::min());
  return float(double(std::int64_t(x)));
}

/// The arenas written as `dtype` (the count as I64), read back and loaded.
void check_written(Arenas const& a, io::DType dtype) {
  std::vector<io::OutTensor> tensors;
  for (std::size_t k = 0; k < 2; ++k)
    for (auto const& info : *indices[k]) {
      bool const count = info.name.ends_with("num_batches_tracked");
      tensors.push_back({info.name, count ? io::DType::I64 : dtype, info.shape,
                         std::span<float const>(a[k].data() + info.offset, info.size())});
    }
  auto const bytes = io::serialize(tensors, {{"format", "pt"}});
  io::Parsed parsed;
  try {
    parsed = io::parse(file, bytes.data(), bytes.size());
  } catch (ktnn::Error const& e) {
    broken(std::string("its own file does not parse: ") + e.what());
  }
  auto const again = load(parsed, {});
  if (!again) broken("its own file does not load");
  for (std::size_t k = 0; k < 2; ++k)
    for (auto const& info : *indices[k]) {
      bool const count = info.name.ends_with("num_batches_tracked");
      for (std::size_t i = info.offset; i < info.offset + info.size(); ++i) {
        float const x = a[k][i];
        float want = x;
        if (count)
          want = as_count(x);
        else if (dtype == io::DType::F16)
          want = io::detail::half_to_float(io::detail::float_to_half(x));
        else if (dtype == io::DType::BF16)
          want = io::detail::bf16_to_float(io::detail::float_to_bf16(x));
        float const got = (*again)[k][i];
        bool const same = std::isnan(want) ? std::isnan(got)
                                           : std::bit_cast<std::uint32_t>(want) ==
                                                 std::bit_cast<std::uint32_t>(got);
        if (!same)
          broken("'" + info.name + "' written as " + std::string(io::dtype_name(dtype)) +
                 " does not come back");
      }
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  io::Parsed parsed;
  try {
    parsed = io::parse(file, data, size);
  } catch (ktnn::Error const& e) {
    check_message(e, "ktnn::io::safetensors");
    return 0;
  }
  check_parsed(parsed, data, size);

  auto const strict = load(parsed, {.strict = true});
  auto const lenient = load(parsed, {.strict = false});
  auto const finite = load(parsed, {.strict = true, .check_finite = true});
  if (strict && !lenient) broken("strict took what lenient refused");
  if (finite && !strict) broken("check_finite took what plain refused");
  if (strict && bits(*strict) != bits(*lenient)) broken("strict and lenient loads differ");
  if (finite && bits(*finite) != bits(*strict)) broken("checked and unchecked loads differ");
  if (finite)
    for (auto const& arena : *finite)
      for (float x : arena)
        if (!std::isfinite(x)) broken("check_finite let a non-finite value through");
  if (lenient) {
    check_values(parsed, *lenient);
    for (auto dtype : {io::DType::F32, io::DType::F64, io::DType::F16, io::DType::BF16})
      check_written(*lenient, dtype);
  }
  return 0;
}
