#pragma once
/// \file Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-
/// compressed or plain, through zlib. Everything is checked: magic number,
/// element type, dimensions (their product against a limit, without
/// overflow) against the data actually present, and the gzip stream itself;
/// any fault throws ktnn::Error naming the file. Memory follows what the
/// header declares within the limit, never what the stream inflates to.

#include <ktnn/core/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ktnn::detail {
/// A gzip or plain file read through zlib, a bounded number of bytes at a time.
class GzipReader {
 public:
  explicit GzipReader(std::string const& path) : path_(path), file_(nullptr, gzclose) {
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored))
      fail("ktnn::data::read_idx", "cannot read '", path, "': it is a directory");
    errno = 0;
    file_.reset(gzopen(path.c_str(), "rb"));
    if (!file_) {
      int const error = errno;
      fail("ktnn::data::read_idx", "cannot open '", path,
           "': ", error != 0 ? std::strerror(error) : "zlib could not allocate its state");
    }
  }
  /// Reads up to `n` bytes into `out`; returns how many (fewer only at the end).
  std::size_t read(std::uint8_t* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      unsigned const want = unsigned(std::min<std::size_t>(n - done, 1u << 30));
      int const got = gzread(file_.get(), out + done, want);
      if (got < 0) corrupt();
      if (got == 0) break;
      done += std::size_t(got);
    }
    // gzread reports a stream that ends early only through gzerror.
    int code = 0;
    gzerror(file_.get(), &code);
    if (code != Z_OK && code != Z_STREAM_END) corrupt();
    return done;
  }

 private:
  [[noreturn]] void corrupt() {
    int code = 0;
    char const* message = gzerror(file_.get(), &code);
    fail("ktnn::data::read_idx", "'", path_,
         "' is corrupt or truncated: ", message && *message ? message : "zlib error");
  }
  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
};
}  // namespace ktnn::detail

namespace ktnn::data {

/// An IDX array of unsigned bytes: its dimensions and its elements.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> bytes;
  std::size_t count() const {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

/// The most elements read_idx accepts by default (a file may declare up to
/// 2^128; memory is allocated for what the header declares, so a hostile header
/// must not decide how much).
inline constexpr std::size_t idx_default_max_elements = std::size_t(1) << 32;

/// Reads an IDX file of unsigned bytes with `expected_rank` dimensions,
/// gzip-compressed or plain. The header is read first; the data is read up
/// to the size it declares (after checking that size against
/// `max_elements`, without overflow), so a small file that inflates to
/// gigabytes is rejected after reading what it declared plus one chunk.
inline IdxArray read_idx(std::string const& path, std::size_t expected_rank,
                         std::size_t max_elements = idx_default_max_elements) {
  detail::GzipReader in(path);
  std::uint8_t head[4] = {};
  std::size_t const got = in.read(head, 4);
  if (got < 4)
    detail::fail("ktnn::data::read_idx", "'", path, "' has ", got,
                 " bytes, too short for an IDX header");
  if (head[0] != 0 || head[1] != 0)
    detail::fail("ktnn::data::read_idx", "'", path, "' has a wrong magic number (first bytes ",
                 int(head[0]), ", ", int(head[1]), " instead of 0, 0)");
  if (head[2] != 0x08)
    detail::fail("ktnn::data::read_idx", "'", path, "' holds element type ", int(head[2]),
                 "; only unsigned bytes (8) are supported");
  std::size_t const rank = head[3];
  if (rank != expected_rank)
    detail::fail("ktnn::data::read_idx", "'", path, "' has ", rank, " dimensions, expected ",
                 expected_rank);
  std::vector<std::uint8_t> dims(4 * rank);
  if (in.read(dims.data(), dims.size()) != dims.size())
    detail::fail("ktnn::data::read_idx", "'", path, "' is truncated inside its header");
  IdxArray out;
  std::size_t expected = 1;
  bool too_many = false;
  for (std::size_t d = 0; d < rank; ++d) {
    auto const* p = dims.data() + 4 * d;
    std::size_t const extent = (std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) |
                               (std::size_t(p[2]) << 8) | std::size_t(p[3]);
    out.dims.push_back(extent);
    // The product stays below max_elements or is flagged, so it never wraps.
    if (extent != 0 && expected > max_elements / extent) too_many = true;
    if (!too_many) expected *= extent;
  }
  if (too_many && std::find(out.dims.begin(), out.dims.end(), 0) == out.dims.end()) {
    std::ostringstream shape;
    for (std::size_t d = 0; d < rank; ++d) shape << (d ? " x " : "") << out.dims[d];
    detail::fail("ktnn::data::read_idx", "'", path, "' declares ", shape.str(),
                 " elements, more than the limit of ", max_elements);
  }
  if (too_many) expected = 0;  // a zero extent: no elements, whatever the others
  out.bytes.resize(expected);
  std::size_t const held = in.read(out.bytes.data(), expected);
  if (held != expected)
    detail::fail("ktnn::data::read_idx", "'", path, "' declares ", expected, " elements but holds ",
                 held);
  // Count what follows, a chunk at a time, up to a bound: extra bytes make
  // the file wrong, and a hostile one cannot make this allocate.
  std::uint8_t chunk[1 << 12];
  std::size_t extra = 0;
  for (std::size_t n; extra < (std::size_t(1) << 20) && (n = in.read(chunk, sizeof chunk)) > 0;)
    extra += n;
  if (extra > 0)
    detail::fail("ktnn::data::read_idx", "'", path, "' declares ", expected, " elements but holds ",
                 extra >= (std::size_t(1) << 20) ? "more than " : "", expected + extra);
  return out;
}

}  // namespace ktnn::data
