// A heap byte buffer aligned to a cache line: weights converted or quantized at load live in these, so
// that the decode kernels' 64-byte vector loads never straddle two cache lines (each straddling load
// costs a second access; a streamed matrix read that way decoded 10-20% slower).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace t5g {

class AlignedBytes {
 public:
  static constexpr size_t kAlign = 64;
  // n zero bytes.
  explicit AlignedBytes(size_t n) : n_(n) {
    const size_t cap = (n + kAlign - 1) / kAlign * kAlign;
    void* p = cap ? std::aligned_alloc(kAlign, cap) : nullptr;
    if (cap && !p) throw std::bad_alloc();
    if (p) std::memset(p, 0, cap);
    p_.reset(static_cast<uint8_t*>(p));
  }
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> p_;
  size_t n_ = 0;
};

}  // namespace t5g
