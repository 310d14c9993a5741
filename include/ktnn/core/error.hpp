#pragma once
/// \file ktnn::Error, the one exception type ktnn throws (host code only).

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ktnn {

/// Thrown by host code for bad runtime input: a wrong size, a corrupt file, an
/// unusable option. The message names the operation and what was wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
/// Throws ktnn::Error("<operation>: <parts...>").
template <class... Parts>
[[noreturn]] void fail(std::string_view operation, Parts const&... parts) {
  std::ostringstream message;
  message << operation << ": ";
  (message << ... << parts);
  throw Error(message.str());
}

}  // namespace detail
}  // namespace ktnn
