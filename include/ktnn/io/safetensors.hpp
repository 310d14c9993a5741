#pragma once
/// \file The safetensors format (host code): parse, validate, convert, write.
///
/// A file is an 8-byte little-endian header length N, N bytes of JSON, then
/// the tensors' bytes. The JSON maps each tensor's name to its dtype, shape
/// and [begin, end) byte offsets into the data, and may hold
/// "__metadata__", a map of strings. The rules here are those of the
/// reference implementation (huggingface/safetensors): the header is at most
/// 100 MB, names are unique, the tensors tile the data exactly (sorted by
/// offset, each begins where the one before ends, the last ends at the end of
/// the file), and each tensor's byte count is its element count times its
/// dtype's size.
///
/// Everything that reads a file works on bytes already in memory, sized by the
/// file itself: a header that claims more than the file holds is an error,
/// never an allocation. Every failure throws ktnn::Error naming the file, the
/// tensor when there is one, and the problem.

#include <ktnn/core/error.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace ktnn::io {

// safetensors stores little-endian values; tensors are copied byte for byte.
static_assert(std::endian::native == std::endian::little, "ktnn::io: little-endian hosts only");

/// The element types ktnn reads and writes (safetensors' names).
enum class DType { F64, F32, F16, BF16, I64 };

inline constexpr std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::F64:
      return "F64";
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I64:
      return "I64";
  }
  return "?";
}

inline constexpr std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
      return 4;
    case DType::F16:
    case DType::BF16:
      return 2;
  }
  return 0;
}

/// One tensor of a parsed file: its bytes are data[begin, end).
struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::size_t begin = 0, end = 0;
  std::size_t elements() const {
    std::size_t n = 1;
    for (auto e : shape) n *= e;
    return n;
  }
};

/// A validated file: entries in data order, metadata, and a view of the data
/// (valid while the bytes it was parsed from live).
struct Parsed {
  std::string file;
  std::vector<TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
  std::span<unsigned char const> data;

  TensorEntry const* find(std::string_view name) const {
    for (auto const& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

/// The header-size limit of the reference implementation.
inline constexpr std::size_t max_header_bytes = 100'000'000;
/// How deep the header's JSON may nest: a safetensors header is three levels
/// ({name: {"shape": [...]}}); a hostile one nested millions deep would take
/// gigabytes as a tree (the reference's JSON parser stops at 128).
inline constexpr int max_header_depth = 16;

namespace detail {
using ktnn::detail::fail;

inline DType parse_dtype(std::string const& file, std::string const& tensor, std::string_view s) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64})
    if (s == dtype_name(d)) return d;
  fail("ktnn::io::safetensors", file, ": tensor '", tensor, "' has dtype '", s,
       "', which ktnn does not read (F64, F32, F16, BF16, I64)");
}

inline std::uint64_t load_le64(unsigned char const* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline void store_le64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

/// A JSON value for an error message, bounded: a hostile header may hold a
/// string of megabytes or arrays nested a million deep, and dump() recurses
/// once per level. Short arrays of scalars are shown whole; anything else is
/// summarized by its type and size.
inline std::string describe(nlohmann::json const& v) {
  constexpr std::size_t limit = 80;
  auto clip = [&](std::string s) {
    if (s.size() > limit) s = s.substr(0, limit) + "...";
    return s;
  };
  if (v.is_array()) {
    bool flat = v.size() <= 8;
    for (auto const& e : v) flat = flat && e.is_primitive() && !e.is_string();
    if (flat) return clip(v.dump());
    return "an array of " + std::to_string(v.size()) + " elements";
  }
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " members";
  return clip(v.dump());
}

/// The first `limit` characters of a message from elsewhere (nlohmann quotes
/// the offending token, which a hostile header can make megabytes long).
inline std::string clipped(std::string_view s, std::size_t limit = 240) {
  return s.size() <= limit ? std::string(s) : std::string(s.substr(0, limit)) + "...";
}

/// A JSON value that is a non-negative integer that fits size_t, or fails.
inline std::size_t as_size(nlohmann::json const& v, std::string const& file,
                           std::string const& tensor, char const* what) {
  if (v.is_number_unsigned()) {
    auto const u = v.get<std::uint64_t>();
    if (u <= std::numeric_limits<std::size_t>::max()) return std::size_t(u);
  } else if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    return std::size_t(v.get<std::int64_t>());
  }
  fail("ktnn::io::safetensors", file, ": tensor '", tensor, "': ", what, " holds ", describe(v),
       ", expected a non-negative integer");
}

// IEEE half and bfloat16, converted on the host (no device code reads files).
inline float half_to_float(std::uint16_t h) {
  std::uint32_t const sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {  // Inf or NaN
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // zero
    bits = sign;
  } else {  // subnormal: normalize
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// Round to nearest, ties to even, as PyTorch's conversion does.
inline std::uint16_t float_to_half(float f) {
  std::uint32_t const bits = std::bit_cast<std::uint32_t>(f);
  std::uint16_t const sign = std::uint16_t((bits >> 16) & 0x8000u);
  std::uint32_t const abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // Inf or NaN (NaN keeps a quiet bit)
    return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504: Inf
  if (abs < 0x38800000u) {                        // below the smallest normal half
    if (abs < 0x33000000u) return sign;           // under half the smallest subnormal
    std::uint32_t const exponent = abs >> 23;
    std::uint32_t const mantissa = (abs & 0x7fffffu) | 0x800000u;
    std::uint32_t const shift = 126 - exponent;  // 14 + (112 - exponent) - 1 + 1
    std::uint32_t half = mantissa >> shift;
    std::uint32_t const rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return sign | std::uint16_t(half);
  }
  std::uint32_t half = ((abs - 0x38000000u) >> 13);  // rebias 127 -> 15
  std::uint32_t const rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return sign | std::uint16_t(half);
}

inline float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t(b) << 16);
}

inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t const bits = std::bit_cast<std::uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((bits >> 16) | 0x40u);  // NaN
  std::uint32_t const rounding = 0x7fffu + ((bits >> 16) & 1u);
  return std::uint16_t((bits + rounding) >> 16);
}

/// Element i of a tensor's little-endian bytes, as a double.
inline double element(DType d, unsigned char const* p, std::size_t i) {
  auto load = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p + i * sizeof v, sizeof v);
    return v;
  };
  switch (d) {
    case DType::F64:
      return std::bit_cast<double>(load(std::uint64_t{}));
    case DType::F32:
      return double(std::bit_cast<float>(load(std::uint32_t{})));
    case DType::F16:
      return double(half_to_float(load(std::uint16_t{})));
    case DType::BF16:
      return double(bf16_to_float(load(std::uint16_t{})));
    case DType::I64:
      return double(std::int64_t(load(std::uint64_t{})));
  }
  return 0;
}

/// Writes value as element i of a little-endian tensor of dtype d.
inline void store_element(DType d, unsigned char* p, std::size_t i, double value) {
  auto store = [&](auto v) { std::memcpy(p + i * sizeof v, &v, sizeof v); };
  switch (d) {
    case DType::F64:
      store(std::bit_cast<std::uint64_t>(value));
      break;
    case DType::F32:
      store(std::bit_cast<std::uint32_t>(float(value)));
      break;
    case DType::F16:
      store(float_to_half(float(value)));
      break;
    case DType::BF16:
      store(float_to_bf16(float(value)));
      break;
    case DType::I64: {
      // A count (BatchNorm's num_batches_tracked) kept as float or double, so
      // whatever a loaded file put there: NaN is written as 0 and values
      // beyond int64 saturate (converting them would be undefined).
      std::int64_t n = 0;
      if (value >= 0x1p63)
        n = std::numeric_limits<std::int64_t>::max();
      else if (value < -0x1p63)
        n = std::numeric_limits<std::int64_t>::min();
      else if (value == value)
        n = std::int64_t(value);
      store(std::uint64_t(n));
      break;
    }
  }
}

/// Test hook: the write stage at which write_file fails as if the system had
/// refused it (see WriteStage), or none. Only tests set it.
enum class WriteStage { none, create, write, sync, close, rename, sync_directory };
inline std::atomic<WriteStage>& injected_write_fault() {
  static std::atomic<WriteStage> stage{WriteStage::none};
  return stage;
}
}  // namespace detail

namespace detail {
/// The header's JSON, refusing duplicate top-level keys and deep nesting.
/// Duplicate names: nlohmann keeps the last of two equal keys, so count the
/// top-level keys as the parser meets them (in a hash set: a header may hold
/// millions of keys). Nesting is refused as the parser meets it, before the
/// tree grows (the Error passes through nlohmann, which unwinds cleanly).
inline nlohmann::json parse_header(char const* op, std::string const& file,
                                   unsigned char const* begin, unsigned char const* end) {
  std::unordered_set<std::string> keys;
  std::string duplicate;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        begin, end, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          using event_t = nlohmann::json::parse_event_t;
          if (event == event_t::key && depth == 1 && parsed.is_string()) {
            auto const& key = parsed.get_ref<std::string const&>();
            if (!keys.insert(key).second && duplicate.empty()) duplicate = key;
          }
          if ((event == event_t::object_start || event == event_t::array_start) &&
              depth >= max_header_depth)
            fail(op, file, ": the header nests deeper than ", max_header_depth,
                 " levels (a safetensors header nests 3)");
          return true;
        });
  } catch (nlohmann::json::exception const& e) {
    fail(op, file, ": the header is not valid JSON: ", clipped(e.what()));
  }
  if (duplicate == "__metadata__") fail(op, file, ": __metadata__ appears twice in the header");
  if (!duplicate.empty()) fail(op, file, ": tensor '", duplicate, "' appears twice in the header");
  if (!header.is_object())
    fail(op, file, ": the header is ", header.type_name(), ", not an object");
  return header;
}

/// The __metadata__ entry: strings only.
inline std::map<std::string, std::string> parse_metadata(char const* op, std::string const& file,
                                                         nlohmann::json const& entry) {
  if (!entry.is_object())
    fail(op, file, ": __metadata__ is ", entry.type_name(), ", not an object");
  std::map<std::string, std::string> metadata;
  for (auto const& [key, value] : entry.items()) {
    if (!value.is_string())
      fail(op, file, ": __metadata__ '", key, "' is ", value.type_name(), ", not a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

/// The header's entry of tensor `name`: its dtype, shape and offsets, which
/// must lie in the `data_size` bytes of data and hold exactly the bytes the
/// dtype and shape need.
inline TensorEntry parse_tensor(char const* op, std::string const& file, std::string const& name,
                                nlohmann::json const& entry, std::size_t data_size) {
  if (!entry.is_object())
    fail(op, file, ": tensor '", name, "' is ", entry.type_name(), ", not an object");
  for (char const* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail(op, file, ": tensor '", name, "' has no ", field);
  auto const& dtype = entry["dtype"];
  if (!dtype.is_string())
    fail(op, file, ": tensor '", name, "': dtype is ", describe(dtype), ", not a string");
  TensorEntry t;
  t.name = name;
  t.dtype = parse_dtype(file, name, dtype.get<std::string>());
  auto const& shape = entry["shape"];
  if (!shape.is_array())
    fail(op, file, ": tensor '", name, "': shape is ", describe(shape), ", not an array");
  std::size_t elements = 1;
  bool overflow = false;
  for (auto const& e : shape) {
    std::size_t const extent = as_size(e, file, name, "shape");
    t.shape.push_back(extent);
    overflow |= __builtin_mul_overflow(elements, extent, &elements);
  }
  auto const& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(op, file, ": tensor '", name, "': data_offsets is ", describe(offsets),
         ", expected [begin, end]");
  t.begin = as_size(offsets[0], file, name, "data_offsets");
  t.end = as_size(offsets[1], file, name, "data_offsets");
  if (t.begin > t.end)
    fail(op, file, ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
         "] are reversed (begin after end)");
  if (t.end > data_size)
    fail(op, file, ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
         "] lie outside the ", data_size, " bytes of data");
  std::size_t bytes_needed = 0;
  overflow |= __builtin_mul_overflow(elements, dtype_size(t.dtype), &bytes_needed);
  if (overflow || bytes_needed != t.end - t.begin)
    fail(op, file, ": tensor '", name, "': ", dtype_name(t.dtype), " of shape ", describe(shape),
         " needs ", overflow ? std::string("more than 2^64") : std::to_string(bytes_needed),
         " bytes, but data_offsets give ", t.end - t.begin);
  return t;
}

/// Sorts the tensors by offset and checks that they tile the data: no gap,
/// no overlap, nothing after.
inline void check_tiling(char const* op, Parsed& out) {
  std::sort(out.tensors.begin(), out.tensors.end(), [](auto const& a, auto const& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t expected = 0;
  for (auto const& t : out.tensors) {
    if (t.begin != expected)
      fail(op, out.file, ": tensor '", t.name, "' starts at byte ", t.begin,
           " of the data, expected ", expected,
           t.begin < expected ? " (it overlaps the tensor before it)" : " (a gap before it)");
    expected = t.end;
  }
  if (expected != out.data.size())
    fail(op, out.file, ": the tensors end at byte ", expected, " but the data has ",
         out.data.size(), " bytes");
}
}  // namespace detail

/// Parses and validates the bytes of a safetensors file, `size` of them at
/// `bytes`; `file` names it in errors. The result points into `bytes`.
inline Parsed parse(std::string const& file, unsigned char const* bytes, std::size_t size) {
  using detail::fail;
  char const* const op = "ktnn::io::safetensors";
  if (size < 8)
    fail(op, file, ": truncated: ", size,
         " bytes, but a safetensors file starts with an 8-byte header length");
  std::uint64_t const n = detail::load_le64(bytes);
  if (n > max_header_bytes)
    fail(op, file, ": the header length is ", n, " bytes, over the format's limit of ",
         max_header_bytes);
  if (n > size - 8)
    fail(op, file, ": truncated: the header length is ", n, " bytes but only ", size - 8,
         " follow it");
  auto const* const json_begin = bytes + 8;
  auto const* const json_end = json_begin + n;
  nlohmann::json const header = detail::parse_header(op, file, json_begin, json_end);
  Parsed out;
  out.file = file;
  out.data = std::span<unsigned char const>(json_end, size - 8 - n);
  for (auto const& [name, entry] : header.items()) {
    if (name == "__metadata__")
      out.metadata = detail::parse_metadata(op, file, entry);
    else
      out.tensors.push_back(detail::parse_tensor(op, file, name, entry, out.data.size()));
  }
  detail::check_tiling(op, out);
  return out;
}

/// A whole file in memory, parsed.
struct File {
  std::vector<unsigned char> bytes;
  Parsed parsed;
};

/// Reads `path` (its size from the file system, never from its header) and
/// parses it.
inline File read_file(std::string const& path) {
  using detail::fail;
  // O_NONBLOCK: a FIFO at `path` must not hang the open (it is then refused
  // as not a regular file); reads of regular files never block on it.
  int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("ktnn::io::read_file", path, ": cannot open: ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) fail("ktnn::io::read_file", path, ": ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("ktnn::io::read_file", path, ": not a regular file");
  File f;
  try {
    f.bytes.resize(std::size_t(st.st_size));
  } catch (std::bad_alloc const&) {
    fail("ktnn::io::read_file", path, ": ", st.st_size, " bytes do not fit in memory");
  }
  std::size_t done = 0;
  while (done < f.bytes.size()) {
    ssize_t const got = ::read(fd, f.bytes.data() + done, f.bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("ktnn::io::read_file", path, ": read failed: ", std::strerror(errno));
    if (got == 0) fail("ktnn::io::read_file", path, ": the file shrank while being read");
    done += std::size_t(got);
  }
  f.parsed = parse(path, f.bytes.data(), f.bytes.size());
  return f;
}

/// One tensor to write: `values` are its elements in row-major order (host
/// memory that must outlive serialize), converted to `dtype` as written.
struct OutTensor {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::variant<std::span<float const>, std::span<double const>> values;
};

/// The bytes of a safetensors file of `tensors` (in this order) and
/// `metadata`.
inline std::vector<unsigned char> serialize(std::vector<OutTensor> const& tensors,
                                            std::map<std::string, std::string> const& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (auto const& t : tensors) {
    std::size_t elements = 1;
    for (auto e : t.shape) elements *= e;
    std::size_t const count = std::visit([](auto v) { return v.size(); }, t.values);
    if (elements != count)
      detail::fail("ktnn::io::serialize", "tensor '", t.name, "' has ", count,
                   " values for a shape of ", elements);
    if (header.contains(t.name))
      detail::fail("ktnn::io::serialize", "tensor '", t.name, "' is named twice");
    std::size_t const bytes = elements * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  // The data starts 8-byte aligned, padded with spaces as the reference does.
  json.append((8 - (8 + json.size()) % 8) % 8, ' ');
  std::vector<unsigned char> out(8 + json.size() + offset);
  detail::store_le64(out.data(), json.size());
  std::memcpy(out.data() + 8, json.data(), json.size());
  unsigned char* data = out.data() + 8 + json.size();
  for (auto const& t : tensors) {
    std::visit(
        [&](auto values) {
          for (std::size_t i = 0; i < values.size(); ++i)
            detail::store_element(t.dtype, data, i, double(values[i]));
          data += values.size() * dtype_size(t.dtype);
        },
        t.values);
  }
  return out;
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// written, flushed to disk, renamed over `path`, and the folder flushed. If
/// anything fails, the temporary file is removed, `path` is as it was (the old
/// complete file, or none), and ktnn::Error says which stage failed and why.
inline void write_file(std::string const& path, std::span<unsigned char const> bytes) {
  using detail::WriteStage;
  char const* const op = "ktnn::io::write_file";
  auto const fault = [](WriteStage s) {
    if (detail::injected_write_fault().load() == s) {
      errno = EIO;
      return true;
    }
    return false;
  };
  auto const slash = path.find_last_of('/');
  std::string const directory =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string temporary = path + ".tmp-XXXXXX";
  int fd = fault(WriteStage::create) ? -1 : ::mkstemp(temporary.data());
  if (fd < 0)
    detail::fail(op, path, ": cannot create a temporary file in '", directory,
                 "': ", std::strerror(errno));
  auto abandon = [&](char const* stage) {
    int const saved = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(temporary.c_str());
    detail::fail(op, path, ": ", stage, " failed (", std::strerror(saved), "); '", path,
                 "' is unchanged");
  };
  if (::fchmod(fd, 0644) != 0) abandon("setting the temporary file's permissions");
  // Written in two halves (and chunks of at most 16 MiB): an injected fault
  // strikes after the first half, as a full disk would, however small the file.
  std::size_t const half = bytes.size() / 2;
  std::size_t done = 0;
  while (done < bytes.size()) {
    std::size_t chunk = std::min<std::size_t>(bytes.size() - done, std::size_t(1) << 24);
    if (done < half) chunk = std::min(chunk, half - done);
    if (done >= half && fault(WriteStage::write)) abandon("writing the temporary file");
    ssize_t const wrote = ::write(fd, bytes.data() + done, chunk);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      if (wrote == 0) errno = ENOSPC;
      abandon("writing the temporary file");
    }
    done += std::size_t(wrote);
  }
  if (fault(WriteStage::sync) || ::fsync(fd) != 0) abandon("flushing the temporary file to disk");
  // close releases the descriptor even when it reports an error (Linux), so
  // the injected fault closes it too.
  int closed = ::close(fd);
  if (fault(WriteStage::close)) closed = -1;
  fd = -1;
  if (closed != 0) abandon("closing the temporary file");
  if (fault(WriteStage::rename) || ::rename(temporary.c_str(), path.c_str()) != 0)
    abandon("renaming the temporary file over it");
  // Renamed: the new file is complete in place; what remains is durability.
  int const dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool const synced = dir >= 0 && !fault(WriteStage::sync_directory) && ::fsync(dir) == 0;
  int const saved = errno;
  if (dir >= 0) ::close(dir);
  if (!synced)
    detail::fail(op, path, ": written and renamed, but flushing the folder '", directory,
                 "' failed (", std::strerror(saved), "): the new file may not survive a crash");
}

}  // namespace ktnn::io
