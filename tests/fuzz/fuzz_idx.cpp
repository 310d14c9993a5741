// libFuzzer target for the IDX/gzip reader. The first byte picks the rank the
// caller expects; the rest is the file, read through a memory file. Besides
// "no crash, no out-of-bounds access, no leak" (ASan, UBSan), every accepted
// file must satisfy the reader's contract: the rank asked for, and exactly as
// many elements as the dimensions declare, within the limit.

#include <ktnn/data/idx.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {
constexpr std::size_t limit = std::size_t(1) << 24;  // keeps declared allocations small
}

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t const rank = data[0] % 5;
  int const fd = memfd_create("ktnn_fuzz_idx", 0);
  if (fd < 0) std::abort();
  for (std::size_t done = 1; done < size;) {
    ssize_t const n = write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += std::size_t(n);
  }
  std::string const path = "/proc/self/fd/" + std::to_string(fd);
  try {
    auto const idx = ktnn::data::read_idx(path, rank, limit);
    std::size_t product = 1;
    for (auto d : idx.dims) product *= d;  // each <= limit after a successful read
    if (idx.dims.size() != rank || idx.bytes.size() != product || product > limit ||
        idx.count() != product)
      std::abort();
  } catch (ktnn::Error const& e) {
    std::string const message = e.what();
    if (message.rfind("ktnn::data::read_idx: ", 0) != 0) std::abort();  // names the operation
  }
  close(fd);
  return 0;
}
