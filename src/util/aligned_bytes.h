// A heap byte buffer aligned to a cache line: weights converted or quantized at load live in these, so
// that the decode kernels' 64-byte vector loads never straddle two cache lines (each straddling load
// costs a second access; a streamed matrix read that way decoded 10-20% slower).
//
// Buffers of 2 MiB and more are mapped on 2 MiB boundaries and asked for transparent huge pages
// (madvise; where the kernel has none, they are ordinary pages): a decode step streams every decoder
// weight and the LM head, and with 4 KiB pages each 4 KiB of weights costs a TLB miss, which in a virtual
// machine is a two-level page walk. On the Zen 5 VM the int8 LM head streamed at 50-54 GB/s from 4 KiB
// pages and at 60-69 GB/s from huge pages (same runs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace t5g {

namespace detail {
struct AlignedFree {
  size_t mapped = 0;  // bytes mapped with mmap (0: from aligned_alloc)
  void operator()(uint8_t* p) const;
};
}  // namespace detail

class AlignedBytes {
 public:
  static constexpr size_t kAlign = 64;
  static constexpr size_t kHugePage = size_t(2) << 20;
  // n zero bytes.
  explicit AlignedBytes(size_t n = 0);
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  using Free = detail::AlignedFree;
  std::unique_ptr<uint8_t[], Free> p_;
  size_t n_ = 0;
};

// Whether this kernel hands out transparent huge pages to memory that asks for them (its setting in
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise").
bool transparent_huge_pages_available();

}  // namespace t5g
