#pragma once
/// \file Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-
/// compressed or plain, through zlib. Everything is checked: magic number,
/// element type, dimensions against the data actually present, and the gzip
/// stream itself; any fault throws ktnn::Error naming the file.

#include <ktnn/core/error.hpp>

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

/// Reads the whole (decompressed) content of a gzip or plain file.
inline std::vector<std::uint8_t> read_gzip_file(std::string const& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) detail::fail("ktnn::data::read_idx", "cannot open '", path, "'");
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    int const n = gzread(file.get(), chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      char const* message = gzerror(file.get(), &code);
      detail::fail("ktnn::data::read_idx", "'", path,
                   "' is corrupt or truncated: ", message ? message : "zlib error");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  // gzread reports a stream that ends early only through gzerror.
  int code = 0;
  char const* message = gzerror(file.get(), &code);
  if (code != Z_OK && code != Z_STREAM_END)
    detail::fail("ktnn::data::read_idx", "'", path, "' is corrupt or truncated: ", message);
  return out;
}

/// Reads an IDX file of unsigned bytes with `expected_rank` dimensions.
inline IdxArray read_idx(std::string const& path, std::size_t expected_rank) {
  auto raw = read_gzip_file(path);
  if (raw.size() < 4)
    detail::fail("ktnn::data::read_idx", "'", path, "' has ", raw.size(),
                 " bytes, too short for an IDX header");
  if (raw[0] != 0 || raw[1] != 0)
    detail::fail("ktnn::data::read_idx", "'", path, "' has a wrong magic number (first bytes ",
                 int(raw[0]), ", ", int(raw[1]), " instead of 0, 0)");
  if (raw[2] != 0x08)
    detail::fail("ktnn::data::read_idx", "'", path, "' holds element type ", int(raw[2]),
                 "; only unsigned bytes (8) are supported");
  std::size_t const rank = raw[3];
  if (rank != expected_rank)
    detail::fail("ktnn::data::read_idx", "'", path, "' has ", rank, " dimensions, expected ",
                 expected_rank);
  std::size_t const header = 4 + 4 * rank;
  if (raw.size() < header)
    detail::fail("ktnn::data::read_idx", "'", path, "' is truncated inside its header");
  IdxArray out;
  for (std::size_t d = 0; d < rank; ++d) {
    auto const* p = raw.data() + 4 + 4 * d;
    out.dims.push_back((std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) |
                       (std::size_t(p[2]) << 8) | std::size_t(p[3]));
  }
  std::size_t const expected = out.count();
  if (raw.size() - header != expected)
    detail::fail("ktnn::data::read_idx", "'", path, "' declares ", expected, " elements but holds ",
                 raw.size() - header);
  out.bytes.assign(raw.begin() + header, raw.end());
  return out;
}

}  // namespace ktnn::data
