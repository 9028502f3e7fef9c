// Internal error helpers: every failure becomes a t5g::Error with a message built from its parts.
#pragma once
#include <sstream>
#include <string>
#include <utility>

#include "t5g/error.h"

namespace t5g {

// Concatenates its arguments with operator<< and throws t5g::Error.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  throw Error(os.str());
}

// Throws t5g::Error(args...) unless cond holds. A function, not a macro: the message is only built on failure.
template <typename... Args>
inline void check(bool cond, Args&&... args) {
  if (!cond) fail(std::forward<Args>(args)...);
}

}  // namespace t5g
