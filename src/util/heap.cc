#include "util/heap.h"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace t5g {

bool keep_freed_heap_memory(size_t bytes) {
#if defined(__GLIBC__)
  // Setting the trim threshold also fixes the mmap threshold (glibc then stops raising it to the size of
  // the largest block freed), which would leave every block of 128 KiB or more to a fresh mmap and its
  // page faults: so it is set to glibc's largest, 32 MiB (bigger blocks, a long input's, still map).
  const int trim = bytes > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(bytes);
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, trim) == 1;
#else
  (void)bytes;
  return false;
#endif
}

}  // namespace t5g
