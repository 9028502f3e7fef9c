// A loop over independent rows, shared by the threads only when there is enough work.
#pragma once
#include <cstdint>

#include "kernels/team.h"

namespace t5g {

// f(r) for the rows [0, rows): over the threads when `parallel`, else on this thread, without entering a
// parallel region at all. An `omp parallel for if (false)` still starts a team of one: 1.3 us in
// isolation, up to 7 us between the two-thread regions of a decode step (a batch-1 step of the 270m ran
// ~160 of them: its norms, RoPE and attention rows).
template <typename F>
void for_rows(int64_t rows, bool parallel, F&& f) {
  if (!parallel) {
    for (int64_t r = 0; r < rows; ++r) f(r);
    return;
  }
  if (team_size() > 1) {  // inside a decode step's team: its members, in contiguous runs of rows
    team_run([&](int m, int T) {
      for (int64_t r = rows * m / T; r < rows * (m + 1) / T; ++r) f(r);
    });
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) f(r);
}

}  // namespace t5g
