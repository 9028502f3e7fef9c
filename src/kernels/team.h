// A team: one parallel region held open across a chain of small parallel steps (a decode step's products,
// norms and attention rows), with the hand-offs between them done by spinning on shared words instead of
// OpenMP's fork and join.
//
// Why: a batch-1 decode step of the 270m is ~70 products of 6-50 us each, with the calling thread's serial
// work (norms, RoPE, an attention row) between them. Each product was its own OpenMP region: on this VM a
// fork and join costs 2.2-3.7 us, against 0.24 us for a hand-off to a team (BM_ParallelHandoff). Inside a
// team the master (the thread that opened it) runs the serial code as before; whenever a parallel helper
// below is called by the master, its work goes to the team: the master posts it, every member runs its
// part, the master waits for the others. Between jobs the members spin (yielding now and then, and
// sleeping after a while, so that a master busy elsewhere does not burn a core).
//
// A member waiting for the next job may be asked to prefetch memory the next job will read (team_prefetch):
// a decode step's weights do not depend on the serial work between the products, so the memory bus, idle
// while the master computes, can already stream them.
#pragma once
#include <omp.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace t5g {

// Runs body() on the calling thread as the master of a team of `threads` threads (the OpenMP threads of
// one parallel region; fewer if OpenMP gives fewer). With one thread, or inside another parallel region,
// body() just runs. The parallel helpers that body calls (for_each_unit_range, for_rows, team_for) use the
// team; work they do not route to it (another OpenMP region opened by body) runs on the master alone.
using TeamBody = void (*)(void* ctx);
void run_as_team(int threads, TeamBody body, void* ctx);

template <class F>
void run_as_team(int threads, F&& f) {
  using Fn = std::remove_reference_t<F>;
  run_as_team(threads, [](void* c) { (*static_cast<Fn*>(c))(); }, const_cast<void*>(static_cast<const void*>(&f)));
}

// The size of the team the calling thread leads and may hand work to now, or 0: not a team's master, or
// inside one of its jobs already.
int team_size();

// Runs fn(ctx, member, size) on every member of the calling thread's team (member 0 is the master, which
// runs its part on this thread) and returns when all are done. Call only when team_size() > 1.
using TeamJob = void (*)(void* ctx, int member, int size);
void team_run(TeamJob fn, void* ctx);

template <class F>
void team_run(F&& f) {
  using Fn = std::remove_reference_t<F>;
  team_run([](void* c, int m, int s) { (*static_cast<Fn*>(c))(m, s); }, const_cast<void*>(static_cast<const void*>(&f)));
}

// Asks the members other than the master to prefetch, while they wait for the next job, the memory
// [p, p + bytes) split evenly between them in order (member m of the waiting ones takes the m-th part):
// the part of the next product each will stream first (row_shares.h gives member t of T the t-th share).
// Replaces any earlier request; a member stops prefetching as soon as a job arrives. No effect outside a team.
void team_prefetch(const void* p, size_t bytes);

// team_for's team path: fn(ctx, i) for i in [0, n), each member taking the next index.
void team_for_dynamic(int64_t n, void (*fn)(void* ctx, int64_t i), void* ctx);

// f(i) for i in [0, n) when `parallel`: over the members of the calling thread's team, each taking the
// next index (dynamic), or over an OpenMP region (dynamic, 1) when it leads none; else in order here.
template <class F>
void team_for(int64_t n, bool parallel, F&& f) {
  if (parallel && n > 1 && team_size() > 1) {
    using Fn = std::remove_reference_t<F>;
    team_for_dynamic(n, [](void* c, int64_t i) { (*static_cast<Fn*>(c))(i); }, const_cast<void*>(static_cast<const void*>(&f)));
  } else if (parallel && n > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

}  // namespace t5g
