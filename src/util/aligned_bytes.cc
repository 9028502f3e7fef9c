#include "util/aligned_bytes.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>

namespace t5g {

AlignedBytes::AlignedBytes(size_t n) : n_(n) {
  if (n >= kHugePage) {
    // Map a huge page more than needed and trim it to a 2 MiB-aligned range: only aligned 2 MiB
    // ranges can be backed by huge pages. The pages are zero (anonymous memory) and faulted in on first
    // use.
    const size_t len = (n + kHugePage - 1) / kHugePage * kHugePage;
    void* raw = ::mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t r = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t a = (r + kHugePage - 1) & ~(uintptr_t(kHugePage) - 1);
    if (a > r) ::munmap(raw, a - r);
    if (const size_t tail = (r + len + kHugePage) - (a + len)) ::munmap(reinterpret_cast<void*>(a + len), tail);
    ::madvise(reinterpret_cast<void*>(a), len, MADV_HUGEPAGE);  // (fails harmlessly without THP)
    p_ = std::unique_ptr<uint8_t[], Free>(reinterpret_cast<uint8_t*>(a), Free{len});
    return;
  }
  const size_t cap = (n + kAlign - 1) / kAlign * kAlign;
  void* p = cap ? std::aligned_alloc(kAlign, cap) : nullptr;
  if (cap && !p) throw std::bad_alloc();
  if (p) std::memset(p, 0, cap);
  p_ = std::unique_ptr<uint8_t[], Free>(static_cast<uint8_t*>(p), Free{0});
}

void detail::AlignedFree::operator()(uint8_t* p) const {
  if (mapped) ::munmap(p, mapped);
  else std::free(p);
}

bool transparent_huge_pages_available() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  return s.find("[always]") != std::string::npos || s.find("[madvise]") != std::string::npos;
}

}  // namespace t5g
