#pragma once
/// @file
/// qtx::error: the one exception type of the public API. Every ops/ entry point validates its
/// arguments and throws it with a message that names the function, the argument and the values.
#include <sstream>
#include <stdexcept>
#include <string>

#include "../config.hpp"

namespace qtx {

/// Shared by every ISA-keyed part of a program (not keyed itself), so an error thrown by code
/// compiled for one ISA is caught as qtx::error by code compiled for another.
class error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace qtx

// The helpers that build messages are compiled with the including unit's flags: ISA-keyed.
namespace qtx::QTX_ABI {

/// Throws qtx::error with the parts streamed into one message.
template <class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw error(message.str());
}

/// check(cond, "gemm: a.cols (", k, ") != b.rows (", kb, ")"): the message is only built on failure.
template <class... Parts>
inline void check(bool condition, const Parts&... parts) {
  if (!condition) throw_error(parts...);
}

}  // namespace qtx
