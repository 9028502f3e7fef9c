// The process heap's policy for the buffers each request allocates and frees.
#pragma once
#include <cstddef>

namespace t5g {

// Keeps up to `bytes` of freed heap memory in the process instead of returning it to the kernel (glibc:
// the trim threshold; elsewhere nothing). By default glibc gives back the top of the heap as soon as
// 128 KiB-256 KiB lie free there, so the next request faults its buffers in again, a zeroed 4 KiB page
// at a time: ~3 us a page on a virtual machine, 13 ms of a 78 ms 128-token encode that followed a
// generate. Returns whether the setting took.
bool keep_freed_heap_memory(size_t bytes);

}  // namespace t5g
