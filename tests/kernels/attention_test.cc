// attention_banded and attention_row against a naive double-precision softmax attention with the
// reference's rounding points, over bands, head sizes (72 = vision, 256 = text), grouped KV heads,
// softcap and precisions; and results independent of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/attention.h"

namespace t5g {
namespace {

std::vector<float> randn(int64_t n, float scale, uint32_t seed, Precision p) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = round_one(d(rng), p);
  return v;
}

// Naive attention of query row i (head h) over keys [lo, hi): scores rounded as the reference, the
// softmax in double, probabilities rounded to the precision, P·V in double.
void naive_row(const float* q, const float* k, const float* v, int64_t ldkv, int64_t i, int64_t lo, int64_t hi,
               int64_t h, const AttnParams& p, int64_t ldq, double* out) {
  const int64_t hd = p.head_dim, kvh = h / (p.num_heads / p.num_kv_heads);
  std::vector<double> s(static_cast<size_t>(hi - lo));
  double mx = -INFINITY;
  for (int64_t j = lo; j < hi; ++j) {
    double d = 0;
    for (int64_t e = 0; e < hd; ++e) d += double(q[i * ldq + h * hd + e]) * k[j * ldkv + kvh * hd + e];
    float x = round_one(round_one(static_cast<float>(d), p.precision) * p.scale, p.precision);
    if (p.softcap)
      x = round_one(round_one(std::tanh(round_one(x / *p.softcap, p.precision)), p.precision) * *p.softcap,
                    p.precision);
    s[j - lo] = x;
    mx = std::max(mx, double(x));
  }
  double sum = 0;
  for (auto& x : s) sum += (x = std::exp(x - mx));
  for (int64_t e = 0; e < hd; ++e) out[e] = 0;
  for (int64_t j = lo; j < hi; ++j) {
    const double pr = round_one(static_cast<float>(s[j - lo] / sum), p.precision);
    for (int64_t e = 0; e < hd; ++e) out[e] += pr * v[j * ldkv + kvh * hd + e];
  }
}

struct Case {
  int64_t L, heads, kv_heads, hd, behind, ahead;
  Precision p;
  bool cap;
};

class AttentionBanded : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionBanded, MatchesNaiveAndThreadCount) {
  const Case c = GetParam();
  AttnParams p;
  p.num_heads = c.heads;
  p.num_kv_heads = c.kv_heads;
  p.head_dim = c.hd;
  p.scale = 1.f / std::sqrt(static_cast<float>(c.hd));
  p.precision = c.p;
  if (c.cap) p.softcap = 3.f;
  const int64_t ldq = c.heads * c.hd + 5, ldkv = c.kv_heads * c.hd + 3, ldo = c.heads * c.hd + 7;
  const auto q = randn(c.L * ldq, 1.f, 1, c.p), k = randn(c.L * ldkv, 1.f, 2, c.p), v = randn(c.L * ldkv, 1.f, 3, c.p);
  std::vector<float> out1(static_cast<size_t>(c.L * ldo), 7.f), out2 = out1;
  const Band band{c.behind, c.ahead};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  attention_banded(q.data(), ldq, k.data(), v.data(), ldkv, out1.data(), ldo, c.L, band, p);
  omp_set_num_threads(2);
  attention_banded(q.data(), ldq, k.data(), v.data(), ldkv, out2.data(), ldo, c.L, band, p);
  omp_set_num_threads(saved);
  ASSERT_EQ(0, std::memcmp(out1.data(), out2.data(), out1.size() * sizeof(float))) << "thread count changed results";
  // fp32: the double reference within 1e-5; reduced precision: within a few ulps of the output
  // precision (scores and probabilities may round the other way when fp32 sums differ in order).
  const double tol = c.p == Precision::kF32 ? 1e-5 : c.p == Precision::kBF16 ? 3e-2 : 4e-3;
  std::vector<double> ref(static_cast<size_t>(c.hd));
  for (int64_t i = 0; i < c.L; ++i)
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t lo = std::max<int64_t>(0, i - c.behind), hi = std::min<int64_t>(c.L, i + c.ahead + 1);
      naive_row(q.data(), k.data(), v.data(), ldkv, i, lo, hi, h, p, ldq, ref.data());
      for (int64_t e = 0; e < c.hd; ++e)
        ASSERT_NEAR(out1[i * ldo + h * c.hd + e], ref[e], tol) << "i=" << i << " h=" << h << " e=" << e;
      for (int64_t e = c.heads * c.hd; e < ldo; ++e) ASSERT_EQ(out1[i * ldo + e], 7.f);  // padding untouched
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionBanded,
    ::testing::Values(Case{1, 1, 1, 8, 1, 1, Precision::kF32, false}, Case{37, 4, 2, 16, 37, 37, Precision::kF32, false},
                      Case{100, 2, 1, 72, 100, 100, Precision::kF32, false},
                      Case{100, 2, 1, 72, 100, 100, Precision::kBF16, false},
                      Case{130, 2, 2, 256, 7, 8, Precision::kF32, false},
                      Case{130, 2, 2, 256, 7, 8, Precision::kBF16, false},
                      Case{300, 2, 1, 24, 31, 32, Precision::kBF16, true},
                      Case{300, 2, 1, 24, 31, 32, Precision::kF16, false},
                      Case{2100, 1, 1, 8, 2100, 2100, Precision::kBF16, false},
                      Case{2100, 1, 1, 8, 2100, 2100, Precision::kF32, true},
                      Case{70, 3, 3, 13, 0, 0, Precision::kF32, false},
                      // Long key spans: the tiled path (full and asymmetric bands,
                      // partial last tiles and query blocks, rows with fully masked tiles).
                      Case{4200, 2, 1, 16, 4200, 4200, Precision::kF32, false},
                      Case{1500, 2, 1, 256, 1500, 1500, Precision::kBF16, false},  // wide heads: tiled past 1024
                      Case{1100, 1, 1, 128, 900, 400, Precision::kF32, true},
                      Case{4200, 2, 1, 16, 4200, 4200, Precision::kBF16, true},
                      Case{4700, 1, 1, 8, 2600, 1700, Precision::kF32, true},
                      Case{4700, 1, 1, 8, 2600, 1700, Precision::kBF16, false}));

// Decoder attention parameters: four query heads over kv_heads kv heads.
AttnParams row_params(int64_t kv_heads, int64_t hd, float scale, Precision pr) {
  AttnParams p;
  p.num_heads = 4;
  p.num_kv_heads = kv_heads;
  p.head_dim = hd;
  p.scale = scale;
  p.precision = pr;
  return p;
}

TEST(AttentionRow, MatchesNaiveOverSpans) {
  for (Precision pr : {Precision::kF32, Precision::kBF16})
    for (int64_t hd : {8, 72, 256}) {
      const AttnParams p = row_params(2, hd, 0.0625f, pr);
      const int64_t ld = 2 * hd, n1 = 37, n2 = 300;
      // The spans as one key array: span 1 = keys [0, n1), span 2 = keys [n1, n1 + n2).
      const auto k = randn((n1 + n2) * ld, 1.f, 4, pr), v = randn((n1 + n2) * ld, 1.f, 5, pr);
      const auto q = randn(4 * hd, 4.f, 6, pr);
      KvSpan spans[2] = {kv_span_f32(k.data(), v.data(), ld, n1), kv_span_f32(k.data() + n1 * ld, v.data() + n1 * ld, ld, n2)};
      std::vector<float> out(static_cast<size_t>(4 * hd));
      attention_row(q.data(), spans, 2, out.data(), p);
      std::vector<double> ref(static_cast<size_t>(hd));
      for (int64_t h = 0; h < 4; ++h) {
        naive_row(q.data(), k.data(), v.data(), ld, 0, 0, n1 + n2, h, p, 0, ref.data());
        for (int64_t e = 0; e < hd; ++e)
          ASSERT_NEAR(out[h * hd + e], ref[e], pr == Precision::kF32 ? 1e-5 : 3e-2) << h << " " << e;
      }
    }
}

// Spans held in bf16 (a bf16 model's cross K/V cache) give bitwise the fp32 spans' result when the values
// are bf16 (as the reference's are), with one span fp32 and one bf16 as in the decoder (self + cross),
// on one thread and split over threads (many keys).
TEST(AttentionRow, Bf16SpansEqualFp32Spans) {
  for (Precision pr : {Precision::kF32, Precision::kBF16})
    for (int64_t hd : {13, 256})
      for (int64_t n2 : {300, 2500}) {
        const AttnParams p = row_params(1, hd, 0.0625f, pr);
        const int64_t ld = hd, n1 = 9;
        const auto k = randn((n1 + n2) * ld, 1.f, 14, Precision::kBF16), v = randn((n1 + n2) * ld, 1.f, 15, Precision::kBF16);
        const auto q = randn(4 * hd, 2.f, 16, pr);
        std::vector<uint16_t> kb(k.size()), vb(v.size());
        for (size_t i = 0; i < k.size(); ++i) {
          uint32_t a, b;
          std::memcpy(&a, &k[i], 4);
          std::memcpy(&b, &v[i], 4);
          kb[i] = static_cast<uint16_t>(a >> 16);
          vb[i] = static_cast<uint16_t>(b >> 16);
        }
        KvSpan f[2] = {kv_span_f32(k.data(), v.data(), ld, n1), kv_span_f32(k.data() + n1 * ld, v.data() + n1 * ld, ld, n2)};
        KvSpan m[2] = {f[0], f[1]};
        m[1].k = KvRows{nullptr, kb.data() + n1 * ld};
        m[1].v = KvRows{nullptr, vb.data() + n1 * ld};
        std::vector<float> o1(4 * hd), o2(4 * hd);
        attention_row(q.data(), f, 2, o1.data(), p);
        attention_row(q.data(), m, 2, o2.data(), p);
        ASSERT_EQ(0, std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float))) << hd << " " << n2;
      }
}

// Spans in int8 with a scale per row and kv head (--cross-kv int8) against the fp32 spans they were
// quantized from: the outputs differ by the quantization only. Two kv heads (per-head scales), short and
// block-parallel key counts, fp32 and bf16 precision. Measured worst |diff| 0.0005-0.0021 (outputs ~0.1-1).
TEST(AttentionRow, Int8SpansCloseToFp32Spans) {
  for (Precision pr : {Precision::kF32, Precision::kBF16})
    for (int64_t n : {300, 5000}) {
      const AttnParams p = row_params(2, 64, 0.125f, pr);
      const int64_t hd = 64, ld = 2 * hd;
      const auto k = randn(n * ld, 1.f, 17, pr), v = randn(n * ld, 1.f, 18, pr), q = randn(4 * hd, 1.f, 19, pr);
      std::vector<int8_t> kq(k.size()), vq(v.size());
      std::vector<float> ks(static_cast<size_t>(n * 2)), vs(ks.size());
      for (int64_t r = 0; r < n * 2; ++r)
        for (auto [x, xq, xs] : {std::tuple{&k, &kq, &ks}, std::tuple{&v, &vq, &vs}}) {
          float amax = 0.f;
          for (int64_t e = 0; e < hd; ++e) amax = std::max(amax, std::fabs((*x)[r * hd + e]));
          (*xs)[r] = amax / 127.f;
          for (int64_t e = 0; e < hd; ++e) (*xq)[r * hd + e] = static_cast<int8_t>(std::nearbyint((*x)[r * hd + e] * 127.f / amax));
        }
      KvSpan f = kv_span_f32(k.data(), v.data(), ld, n), i8;
      i8.k = KvRows{nullptr, nullptr, kq.data(), ks.data(), 2};
      i8.v = KvRows{nullptr, nullptr, vq.data(), vs.data(), 2};
      i8.ld = ld;
      i8.n = n;
      std::vector<float> o1(4 * hd), o2(4 * hd);
      attention_row(q.data(), &f, 1, o1.data(), p);
      attention_row(q.data(), &i8, 1, o2.data(), p);
      double worst = 0;
      for (size_t e = 0; e < o1.size(); ++e) worst = std::max(worst, static_cast<double>(std::fabs(o1[e] - o2[e])));
      std::printf("[ int8 kv ] n %lld %s: worst |diff| %.5f\n", static_cast<long long>(n), precision_name(pr), worst);
      EXPECT_LT(worst, 0.01);
      EXPECT_GT(worst, 0.0) << "int8 spans changed nothing";
    }
}

// Enough keys to split over the threads (a decode step's few hundred self keys, a long input's
// cross-attention): the keys go in blocks over the threads; the result matches the naive softmax and
// does not depend on the thread count.
TEST(AttentionRow, LongSpanMatchesNaiveAndThreadCount) {
  for (Precision pr : {Precision::kF32, Precision::kBF16})
    for (int64_t n2 : {300, 2500}) {
      const AttnParams p = row_params(1, 40, 0.125f, pr);
      const int64_t ld = 40, n1 = 5;
      const auto k = randn((n1 + n2) * ld, 1.f, 7, pr), v = randn((n1 + n2) * ld, 1.f, 8, pr);
      const auto q = randn(4 * 40, 2.f, 9, pr);
      KvSpan spans[2] = {kv_span_f32(k.data(), v.data(), ld, n1),
                         kv_span_f32(k.data() + n1 * ld, v.data() + n1 * ld, ld, n2)};
      std::vector<float> out1(4 * 40), out2(4 * 40);
      const int saved = omp_get_max_threads();
      omp_set_num_threads(1);
      attention_row(q.data(), spans, 2, out1.data(), p);
      omp_set_num_threads(3);
      attention_row(q.data(), spans, 2, out2.data(), p);
      omp_set_num_threads(saved);
      ASSERT_EQ(0, std::memcmp(out1.data(), out2.data(), out1.size() * sizeof(float))) << "thread count changed results";
      std::vector<double> ref(40);
      for (int64_t h = 0; h < 4; ++h) {
        naive_row(q.data(), k.data(), v.data(), ld, 0, 0, n1 + n2, h, p, 0, ref.data());
        for (int64_t e = 0; e < 40; ++e)
          ASSERT_NEAR(out1[h * 40 + e], ref[e], pr == Precision::kF32 ? 1e-5 : 3e-2) << n2 << " " << h << " " << e;
      }
    }
}

}  // namespace
}  // namespace t5g
