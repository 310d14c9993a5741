// What a user's kernel file gets from the inference header: the layers and
// Kokkos, but no file, stream or compression headers.
#include <ktnn/inference.hpp>

#if defined(ZLIB_H)
#error "ktnn/inference.hpp pulls in zlib"
#endif
#if defined(_GLIBCXX_FILESYSTEM)
#error "ktnn/inference.hpp pulls in <filesystem>"
#endif
#if defined(_GLIBCXX_IOSTREAM)
#error "ktnn/inference.hpp pulls in <iostream>"
#endif
