// Streaming SHA-256 (FIPS 180-4). The hub names LFS files by the SHA-256 of their content, so every
// downloaded weight file is checked against it; kept here to avoid a crypto-library dependency.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace t5g {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, size_t size);
  // Finishes the hash and returns it as 64 lowercase hex digits; the object must be reset() before reuse.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_{};
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed so far
};

// SHA-256 of a whole file as hex; throws t5g::Error naming the path when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace t5g
