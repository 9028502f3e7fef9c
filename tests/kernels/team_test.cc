// The decode step's team (kernels/team.h): every member runs every job once; the parallel helpers that a
// team's master calls (matmul_parts' decode schedule, for_rows, team_for, attention_row) hand their work
// to the team and give the same bits as outside one; members asleep after a long serial stretch wake for
// the next job; exceptions reach the caller; a team inside a team, or of one thread, just runs the body.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/attention.h"
#include "kernels/for_rows.h"
#include "kernels/matmul.h"
#include "kernels/row_shares.h"
#include "kernels/team.h"
#include "util/bf16.h"

namespace t5g {
namespace {

TEST(Team, EveryMemberRunsEveryJobOnce) {
  for (int threads : {2, 3, 4}) {
    int size = 0, size_in_job = -1;
    std::vector<std::atomic<int>> runs(static_cast<size_t>(threads));
    constexpr int kJobs = 2000;
    run_as_team(threads, [&] {
      size = team_size();
      for (int j = 0; j < kJobs; ++j)
        team_run([&](int m, int s) {
          EXPECT_EQ(s, size);
          if (m == 0) size_in_job = team_size();
          runs[static_cast<size_t>(m)].fetch_add(1);
        });
    });
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    if (size == 0) GTEST_SKIP() << "OpenMP gave one thread";
    EXPECT_EQ(size, threads);
    EXPECT_EQ(size_in_job, 0) << "the master inside a job must not hand work to the team again";
    for (int m = 0; m < size; ++m) EXPECT_EQ(runs[static_cast<size_t>(m)].load(), kJobs) << "member " << m;
    EXPECT_EQ(team_size(), 0) << "no team after run_as_team returns";
  }
}

TEST(Team, OneThreadOrNestedRunsTheBodyHere) {
  int size = -1;
  run_as_team(1, [&] { size = team_size(); });
  EXPECT_EQ(size, 0);
  int inner = -1, outer = -1;
  run_as_team(2, [&] {
    outer = team_size();
    run_as_team(2, [&] { inner = team_size(); });  // the body runs on the outer team's master
  });
  EXPECT_EQ(inner, outer);
  int in_region = -1;
#pragma omp parallel num_threads(2)
  {
#pragma omp master
    run_as_team(2, [&] { in_region = team_size(); });
  }
  EXPECT_EQ(in_region, 0) << "inside another parallel region there is no team";
}

// A member that has waited longer than its spin budget sleeps; the next job must wake it (the job would
// never finish otherwise), and a prefetch request in between changes nothing.
TEST(Team, SleepingMembersWakeForTheNextJob) {
  std::vector<float> buf(1 << 20, 1.f);
  std::atomic<int> runs{0};
  int size = 0;
  run_as_team(2, [&] {
    size = team_size();
    if (size < 2) return;
    for (int j = 0; j < 5; ++j) {
      team_prefetch(buf.data(), buf.size() * sizeof(float));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      team_run([&](int, int) { runs.fetch_add(1); });
    }
  });
  if (size < 2) GTEST_SKIP() << "OpenMP gave one thread";
  EXPECT_EQ(runs.load(), 5 * size);
}

TEST(Team, ExceptionsReachTheCaller) {
  EXPECT_THROW(run_as_team(2, [] { throw std::runtime_error("body"); }), std::runtime_error);
  std::atomic<int> member_runs{0};
  bool threw = false;
  int size = 0;
  run_as_team(2, [&] {
    size = team_size();
    if (size < 2) return;
    try {
      team_run([&](int m, int) {
        if (m == 0) throw std::runtime_error("master's part");
        member_runs.fetch_add(1);
      });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    team_run([&](int m, int) { member_runs.fetch_add(m > 0 ? 1 : 0); });  // the team still works
  });
  if (size < 2) GTEST_SKIP() << "OpenMP gave one thread";
  EXPECT_TRUE(threw);
  EXPECT_EQ(member_runs.load(), 2 * (size - 1));
}

TEST(Team, HelpersCoverEveryIndexOnceOnTheTeam) {
  for (int threads : {2, 3}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    for (int64_t n : {1, 2, 5, 100, 1000}) {
      std::vector<std::atomic<int>> rows(static_cast<size_t>(n)), dyn(static_cast<size_t>(n)), units(static_cast<size_t>(n));
      std::set<int> row_threads, unit_threads;
      std::mutex mu;
      int team_size_at_start = 0;
      run_as_team(threads, [&] {
        team_size_at_start = team_size();
        for_rows(n, true, [&](int64_t r) {
          rows[static_cast<size_t>(r)].fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          row_threads.insert(omp_get_thread_num());
        });
        team_for(n, true, [&](int64_t i) { dyn[static_cast<size_t>(i)].fetch_add(1); });
        // Each thread's first claim waits (at most 2 s) until every member has claimed: with a member that
        // never walks its share the others would take all of it, and the check below would see it.
        std::atomic<int> claimers{0};
        auto fn = [&](int64_t a, int64_t b) {
          bool first;
          {
            std::lock_guard<std::mutex> lock(mu);
            first = unit_threads.insert(omp_get_thread_num()).second;
          }
          if (first && n >= 100) {
            claimers.fetch_add(1);
            const auto t0 = std::chrono::steady_clock::now();
            while (claimers.load() < team_size_at_start && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)) {
            }
          }
          for (int64_t u = a; u < b; ++u) units[static_cast<size_t>(u)].fetch_add(1);
        };
        using Fn = decltype(fn);
        kern::for_each_unit_range(n, 3, true, [](void* c, int64_t a, int64_t b) { (*static_cast<Fn*>(c))(a, b); }, &fn);
      });
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(rows[static_cast<size_t>(i)].load(), 1) << "for_rows " << i;
        EXPECT_EQ(dyn[static_cast<size_t>(i)].load(), 1) << "team_for " << i;
        EXPECT_EQ(units[static_cast<size_t>(i)].load(), 1) << "for_each_unit_range " << i;
      }
      if (n >= threads && team_size_at_start > 1) {
        EXPECT_EQ(static_cast<int>(row_threads.size()), threads) << "n " << n;
      }
      if (n >= 100 && team_size_at_start > 1) {
        EXPECT_EQ(static_cast<int>(unit_threads.size()), threads) << "every member streams its share; n " << n;
      }
    }
  }
}

// Decode products (parts large enough to split over the threads), every weight format, M = 1 and 8, and
// an attention row over enough keys to split: inside a team the same bits as outside, where the same
// helpers open OpenMP regions.
TEST(Team, DecodeProductsAndAttentionRowsSameBitsAsOutside) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t K = 640, N0 = 1024, N1 = 256;
  std::vector<float> w(static_cast<size_t>((N0 + N1) * K));
  for (auto& v : w) v = nd(rng);
  for (WeightType t : {WeightType::kF32, WeightType::kBF16, WeightType::kQ8, WeightType::kQ4}) {
    std::vector<uint16_t> h;
    std::vector<uint8_t> q0, q1;
    std::vector<uint16_t> s0, s1;
    WeightMatrix W0{WeightType::kF32, N0, K, w.data()}, W1{WeightType::kF32, N1, K, w.data() + N0 * K};
    if (t == WeightType::kBF16) {
      h.resize(w.size());
      for (size_t i = 0; i < w.size(); ++i) h[i] = f32_to_bf16(w[i]);
      W0 = {t, N0, K, h.data()};
      W1 = {t, N1, K, h.data() + N0 * K};
    } else if (is_quantized(t)) {
      q0.resize(static_cast<size_t>(quant_data_bytes(t, N0, K)));
      q1.resize(static_cast<size_t>(quant_data_bytes(t, N1, K)));
      s0.resize(static_cast<size_t>(quant_scale_count(N0, K)));
      s1.resize(static_cast<size_t>(quant_scale_count(N1, K)));
      quantize_matrix(W0, t, q0.data(), s0.data());
      quantize_matrix(W1, t, q1.data(), s1.data());
      W0 = {t, N0, K, q0.data(), s0.data()};
      W1 = {t, N1, K, q1.data(), s1.data()};
    }
    for (int64_t M : {1, 8}) {
      SCOPED_TRACE(::testing::Message() << weight_type_name(t) << " M " << M);
      std::vector<float> x(static_cast<size_t>(M * K));
      for (auto& v : x) v = round_bf16(nd(rng));
      std::vector<float> a0(static_cast<size_t>(M * N0)), a1(static_cast<size_t>(M * N1)), b0(a0.size()), b1(a1.size());
      const MatmulOptions opt{t == WeightType::kBF16, true};
      const MatmulOut outside[] = {{&W0, a0.data(), N0}, {&W1, a1.data(), N1}};
      const MatmulOut inside[] = {{&W0, b0.data(), N0}, {&W1, b1.data(), N1}};
      matmul_parts(x.data(), M, K, outside, 2, opt);
      int size = 0;
      run_as_team(2, [&] {
        size = team_size();
        prefetch_decode_shares({&W0, &W1});
        matmul_parts(x.data(), M, K, inside, 2, opt);
      });
      EXPECT_EQ(0, std::memcmp(a0.data(), b0.data(), a0.size() * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(a1.data(), b1.data(), a1.size() * sizeof(float)));
    }
  }
  // An attention row over 600 keys (4 blocks, split over the threads) in two spans.
  const int64_t hd = 256, n1 = 500, n2 = 100;
  std::vector<float> kf(static_cast<size_t>((n1 + n2) * hd)), vf(kf.size()), qf(static_cast<size_t>(4 * hd));
  for (auto* a : {&kf, &vf, &qf})
    for (auto& v : *a) v = round_bf16(nd(rng));
  AttnParams p;
  p.num_heads = 4;
  p.num_kv_heads = 1;
  p.head_dim = hd;
  p.scale = 0.0625f;
  p.precision = Precision::kBF16;
  const KvSpan spans[2] = {kv_span_f32(kf.data(), vf.data(), hd, n1),
                           kv_span_f32(kf.data() + n1 * hd, vf.data() + n1 * hd, hd, n2)};
  std::vector<float> o1(qf.size()), o2(qf.size());
  attention_row(qf.data(), spans, 2, o1.data(), p);
  run_as_team(2, [&] { attention_row(qf.data(), spans, 2, o2.data(), p); });
  EXPECT_EQ(0, std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)));
}

}  // namespace
}  // namespace t5g
