#include "kernels/row_shares.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include "kernels/team.h"

namespace t5g::kern {
namespace {

// A share's unclaimed units [front, back) packed in one word (front in the low 32 bits), so that the
// owner's claim from the front and a thief's from the back are each one compare-and-swap. Each share has
// its own cache line: the owner's claims never bounce between cores until a thief arrives.
struct alignas(64) Share {
  std::atomic<uint64_t> word;
};

constexpr uint64_t pack(int64_t front, int64_t back) {
  return static_cast<uint64_t>(front) | (static_cast<uint64_t>(back) << 32);
}

// Claims up to `step` units of s from the front (owner) or the back (thief); false when s is empty.
bool claim(Share& s, int64_t step, bool from_back, int64_t* a, int64_t* b) {
  uint64_t w = s.word.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t f = static_cast<int64_t>(w & 0xffffffffu), e = static_cast<int64_t>(w >> 32);
    if (f >= e) return false;
    const int64_t n = std::min(step, e - f);
    const uint64_t next = from_back ? pack(f, e - n) : pack(f + n, e);
    // Relaxed: the claims only have to be disjoint; the results are published by the region's barrier.
    if (s.word.compare_exchange_weak(w, next, std::memory_order_relaxed)) {
      *a = from_back ? e - n : f;
      *b = from_back ? e : f + n;
      return true;
    }
  }
}

}  // namespace

void for_each_unit_range(int64_t units, int64_t step, bool parallel, UnitRangeFn fn, void* ctx) {
  if (units <= 0) return;
  step = std::max<int64_t>(1, step);
  const int team = parallel ? team_size() : 0;  // the decode step's team (team.h), when there is one
  const int64_t T = parallel ? std::min<int64_t>(team > 1 ? team : omp_get_max_threads(), units) : 1;
  // (The packed cursors hold 32-bit unit indices: a product of 2^32 units is split statically instead.)
  if (T <= 1 || units >= (int64_t(1) << 32)) {
    if (T <= 1) {
      fn(ctx, 0, units);
      return;
    }
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(T))
    for (int64_t t = 0; t < T; ++t) fn(ctx, units * t / T, units * (t + 1) / T);
    return;
  }
  Share local[16];
  std::unique_ptr<Share[]> heap;
  Share* shares = local;
  if (T > 16) shares = (heap = std::make_unique<Share[]>(static_cast<size_t>(T))).get();
  for (int64_t t = 0; t < T; ++t) shares[t].word.store(pack(units * t / T, units * (t + 1) / T), std::memory_order_relaxed);
  const auto walk = [&](int64_t me) {
    int64_t a, b;
    while (claim(shares[me], step, false, &a, &b)) fn(ctx, a, b);
    for (int64_t k = 1; k < T; ++k)
      while (claim(shares[(me + k) % T], step, true, &a, &b)) fn(ctx, a, b);
  };
  if (team > 1) {
    team_run([&](int me, int) {
      if (me < T) walk(me);
    });
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(T))
  walk(omp_get_thread_num());  // (a smaller team than T: the missing threads' shares go to the others as thieves)
}

}  // namespace t5g::kern
