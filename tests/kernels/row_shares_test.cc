// The decode schedule (kernels/row_shares.h): every unit in exactly one range, claims of at most `step`
// units, each thread starting on its own contiguous share, and a slow thread's share finished by the others.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "kernels/row_shares.h"

namespace t5g::kern {
namespace {

struct Claim {
  int64_t a, b;
  int thread;
};

template <class F>
std::vector<Claim> run(int64_t units, int64_t step, bool parallel, F&& per_claim) {
  std::vector<Claim> claims;
  std::mutex mu;
  auto fn = [&](int64_t a, int64_t b) {
    per_claim(a, b);
    std::lock_guard<std::mutex> lock(mu);
    claims.push_back({a, b, omp_get_thread_num()});
  };
  using Fn = decltype(fn);
  for_each_unit_range(units, step, parallel, [](void* c, int64_t a, int64_t b) { (*static_cast<Fn*>(c))(a, b); }, &fn);
  std::sort(claims.begin(), claims.end(), [](const Claim& x, const Claim& y) { return x.a < y.a; });
  return claims;
}

TEST(RowShares, EveryUnitOnceInClaimsOfAtMostStep) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3, 5}) {
    omp_set_num_threads(threads);
    for (int64_t units : {1, 2, 7, 100, 16384}) {
      for (int64_t step : {1, 3, 64}) {
        for (bool parallel : {false, true}) {
          SCOPED_TRACE(::testing::Message() << threads << " threads, " << units << " units, step " << step
                                            << (parallel ? "" : ", serial"));
          const std::vector<Claim> c = run(units, step, parallel, [](int64_t, int64_t) {});
          ASSERT_FALSE(c.empty());
          EXPECT_EQ(c.front().a, 0);
          EXPECT_EQ(c.back().b, units);
          for (size_t i = 0; i < c.size(); ++i) {
            EXPECT_LT(c[i].a, c[i].b);
            if (i) {
              EXPECT_EQ(c[i].a, c[i - 1].b) << "gap or overlap";
            }
            const bool one_call = !parallel || threads == 1 || units == 1;
            EXPECT_LE(c[i].b - c[i].a, one_call ? units : step);
          }
        }
      }
    }
  }
  EXPECT_EQ(run(0, 4, true, [](int64_t, int64_t) {}).size(), 0u);
  omp_set_num_threads(saved);
}

// With two threads, thread t starts at unit units·t/2: each streams its own half; a thread done with
// its half takes the other's from the back. The claims are ordered by waits (no sleeps, so a loaded
// machine cannot change the outcome): each thread's first claim waits for the other's, then thread 0's
// second claim (if thread 1 has not taken all the rest first) waits until thread 1 has taken part of
// thread 0's half.
TEST(RowShares, SharesAreContiguousAndAnUnfinishedShareIsTaken) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  if (omp_get_max_threads() != 2) GTEST_SKIP() << "needs a team of two threads";
  const int64_t units = 64;
  std::atomic<int> first_claims{0};
  std::atomic<bool> taken_over{false};
  const auto wait_for = [](auto&& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  };
  std::vector<int> claims_of(2, 0);
  const std::vector<Claim> c = run(units, 2, true, [&](int64_t a, int64_t) {
    const int t = omp_get_thread_num();
    if (claims_of[t]++ == 0) {
      ++first_claims;
      wait_for([&] { return first_claims.load() == 2; });
    }
    if (t == 1 && a < units / 2) taken_over = true;
    if (t == 0 && claims_of[0] == 2) wait_for([&] { return taken_over.load(); });
  });
  omp_set_num_threads(saved);
  ASSERT_EQ(first_claims.load(), 2);
  bool front0 = false, front1 = false;
  int64_t taken = 0, own = 0;
  for (const Claim& x : c) {
    front0 |= x.a == 0 && x.thread == 0;
    front1 |= x.a == units / 2 && x.thread == 1;
    if (x.a < units / 2) (x.thread == 1 ? taken : own) += x.b - x.a;
  }
  EXPECT_TRUE(front0 && front1) << "a thread did not start at the front of its share";
  EXPECT_EQ(taken + own, units / 2);
  EXPECT_GT(taken, 0) << "thread 1 never took over any of thread 0's share";
}

}  // namespace
}  // namespace t5g::kern
