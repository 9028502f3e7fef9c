#include "kernels/team.h"

#include <omp.h>
#include <xmmintrin.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>

namespace t5g {

namespace {

// A member that has seen no job for this long sleeps until the next one (a futex wait), rather than
// spinning through a master's long serial stretch; a decode step's gaps are 1-20 us.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
// Lines a waiting member prefetches between two looks for a job, and at most how much of its part of a
// request: the start of its next share, well inside its 1 MiB L2.
constexpr int kPrefetchBatchLines = 8;
constexpr int64_t kPrefetchLeadBytes = 256 << 10;

// All of a team's shared words in one cache line: a hand-off then moves that line to the members and
// back (and the job's closure). BM_ParallelHandoff on this VM: 0.24 us, against 1.2-1.3 us with the job,
// the sequence word, the prefetch request and the done count on four lines, and 2.2-3.7 us for an
// OpenMP fork and join.
struct alignas(64) Team {
  // The job: written by the master before it bumps seq (release); read by the members after they see it.
  TeamJob fn = nullptr;
  void* ctx = nullptr;
  // The prefetch request: (first line's address / 64) << 22 | lines, 0 for none (one word, so that a
  // member never reads half of a request being replaced). Cleared with every job.
  std::atomic<uint64_t> hint{0};
  std::atomic<uint32_t> seq{0};
  std::atomic<int> done{0};
  std::atomic<int> sleepers{0};
  int size = 1;
  bool quit = false;
};

constexpr int kHintLineBits = 22;  // up to 4M lines (256 MiB) per request

thread_local Team* t_lead = nullptr;  // the team this thread is the master of
thread_local bool t_in_job = false;   // the master is running its part of a job

// Member `me`'s wait for jobs and its part of each, until the master quits.
void member_loop(Team& t, int me) {
  uint32_t seen = 0;
  uint64_t hint_seen = 0;
  const char *pf = nullptr, *pf_end = nullptr;
  using Clock = std::chrono::steady_clock;
  Clock::time_point idle_since = Clock::now();
  unsigned spins = 0;
  for (;;) {
    const uint32_t s = t.seq.load(std::memory_order_acquire);
    if (s != seen) {
      seen = s;
      if (t.quit) return;
      t.fn(t.ctx, me, t.size);
      t.done.fetch_add(1, std::memory_order_release);
      hint_seen = 0;
      pf = pf_end = nullptr;
      idle_since = Clock::now();
      spins = 0;
      continue;
    }
    const uint64_t h = t.hint.load(std::memory_order_relaxed);
    if (h != hint_seen) {
      hint_seen = h;
      // This member's part: the waiting members (1 .. size-1) split the request in order.
      const int64_t lines = static_cast<int64_t>(h & ((uint64_t(1) << kHintLineBits) - 1));
      const char* p0 = reinterpret_cast<const char*>((h >> kHintLineBits) << 6);
      const int64_t w = t.size - 1, i = me - 1;
      pf = p0 + (lines * i / w) * 64;
      pf_end = std::min(p0 + (lines * (i + 1) / w) * 64, pf + kPrefetchLeadBytes);
    }
    if (pf < pf_end) {
      for (int k = 0; k < kPrefetchBatchLines && pf < pf_end; ++k, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
      continue;
    }
    _mm_pause();
    if ((++spins & 1023) != 0) continue;
    // Every ~1024 spins (~10 us): let another thread on this core run (more threads than cores: the
    // master may be waiting for this one's core), and after kSpinBeforeSleep, sleep.
    std::this_thread::yield();
    if (Clock::now() - idle_since > kSpinBeforeSleep) {
      // Sleep until seq moves. seq_cst on both sides (here the count, then a fresh look at seq inside
      // wait; the master's bump, then its look at the count): one of the two sees the other.
      t.sleepers.fetch_add(1, std::memory_order_seq_cst);
      t.seq.wait(seen, std::memory_order_seq_cst);
      t.sleepers.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

void post(Team& t) {
  t.seq.fetch_add(1, std::memory_order_seq_cst);
  if (t.sleepers.load(std::memory_order_seq_cst) > 0) t.seq.notify_all();
}

}  // namespace

void run_as_team(int threads, TeamBody body, void* ctx) {
  if (threads <= 1 || t_lead != nullptr || omp_in_parallel()) {
    body(ctx);
    return;
  }
  Team t;
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num();
    if (me == 0) {
      t.size = omp_get_num_threads();
      t_lead = t.size > 1 ? &t : nullptr;
      try {
        body(ctx);
      } catch (...) {
        error = std::current_exception();
      }
      t_lead = nullptr;
      t.quit = true;
      post(t);
    } else {
      member_loop(t, me);
    }
  }
  if (error) std::rethrow_exception(error);
}

int team_size() { return t_lead != nullptr && !t_in_job ? t_lead->size : 0; }

void team_run(TeamJob fn, void* ctx) {
  Team& t = *t_lead;
  t.fn = fn;
  t.ctx = ctx;
  t.done.store(0, std::memory_order_relaxed);
  t.hint.store(0, std::memory_order_relaxed);
  post(t);
  t_in_job = true;
  std::exception_ptr error;
  try {
    fn(ctx, 0, t.size);
  } catch (...) {  // the members finish their parts (which must not throw) either way
    error = std::current_exception();
  }
  t_in_job = false;
  for (unsigned spins = 1; t.done.load(std::memory_order_acquire) < t.size - 1; ++spins) {
    _mm_pause();
    if ((spins & 1023) == 0) std::this_thread::yield();  // (more threads than cores: a member may need this core)
  }
  if (error) std::rethrow_exception(error);
}

void team_prefetch(const void* p, size_t bytes) {
  if (team_size() <= 1 || bytes == 0) return;
  const uint64_t a = reinterpret_cast<uintptr_t>(p) >> 6;
  if (a >> (64 - kHintLineBits)) return;  // (an address beyond 48 bits does not fit the word)
  const uint64_t lines = std::min<uint64_t>((bytes + 63) / 64, (uint64_t(1) << kHintLineBits) - 1);
  t_lead->hint.store((static_cast<uint64_t>(a) << kHintLineBits) | lines, std::memory_order_relaxed);
}

void team_for_dynamic(int64_t n, void (*fn)(void* ctx, int64_t i), void* ctx) {
  std::atomic<int64_t> next{0};
  team_run([&](int, int) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(ctx, i);
  });
}

}  // namespace t5g
