// The decode products' schedule: which thread streams which weight rows. A decode step is a chain of
// small products (a 270m decoder layer's are 0.2-2.6 MB each) that stream their weights from memory, so
// the schedule decides how much of each product runs at the memory's rate.
#pragma once
#include <cstdint>

namespace t5g::kern {

// Calls fn(ctx, a, b) for disjoint ranges [a, b) that together cover [0, units), on the threads of one
// parallel region (on the calling thread alone when parallel is false or there is one unit).
//
// Each thread owns a contiguous share of the units (thread t of T: units·t/T up to units·(t+1)/T) and
// walks it front to back in claims of `step` units; a thread done with its share then takes claims from
// the back of the others'. So each thread streams one run of adjacent rows, which its prefetches (and
// the hardware's) follow from one claim to the next, and the threads still finish together when one of
// them runs slower (a busy neighbour on a shared machine). A dynamically handed-out list of 64 KB
// ranges, the earlier schedule, restarted every stream at each range and measured 29-32 GB/s on the
// 270m decoder's products in a decode step, against 33-39 GB/s with contiguous shares (int8, same runs).
//
// The ranges depend on the thread count and timing; callers make each unit's result independent of
// the range it is computed in (results never depend on the thread count).
using UnitRangeFn = void (*)(void* ctx, int64_t a, int64_t b);
void for_each_unit_range(int64_t units, int64_t step, bool parallel, UnitRangeFn fn, void* ctx);

}  // namespace t5g::kern
