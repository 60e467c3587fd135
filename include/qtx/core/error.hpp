#pragma once
/// @file
/// qtx::error: the one exception type of the public API. Every ops/ entry point validates its
/// arguments and throws it with a message that names the function, the argument and the values.
#include <sstream>
#include <stdexcept>
#include <string>

namespace qtx {

class error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw error(message.str());
}
}  // namespace detail

/// check(cond, "gemm: a.cols (", k, ") != b.rows (", kb, ")"): the message is only built on failure.
template <class... Parts>
inline void check(bool condition, const Parts&... parts) {
  if (!condition) detail::throw_error(parts...);
}

}  // namespace qtx
