// t5gemma.cpp public API: the one exception type every entry point throws.
#pragma once
#include <stdexcept>
#include <string>

namespace t5g {

// A failure the caller can act on: the message names the file, tensor, field or argument at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace t5g
