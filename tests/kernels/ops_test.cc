// The AVX2 element-wise and attention-row kernels against the scalar ones (the definition), and the
// vector exp/tanh/erfc against double-precision libm. Pure rounding/arithmetic ops must be bit-identical;
// ops with a reduction or a transcendental agree to a few fp32 ulp (fp32) or one ulp of the rounded
// precision (bf16/f16: the fp32 value may sit on the other side of a rounding boundary).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/ops.h"
#include "kernels/ops_internal.h"

namespace t5g {
namespace {

namespace sc = kern::scalar;
namespace vx = kern::avx2;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kSizes[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 72, 100, 256, 1152};
const Precision kPrecisions[] = {Precision::kF32, Precision::kBF16, Precision::kF16};

bool have_avx2() { return active_isa() >= Isa::kAvx2; }
#define REQUIRE_AVX2() \
  if (!have_avx2()) GTEST_SKIP() << "no AVX2 on this CPU"

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

std::vector<float> randn(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// Values that stress rounding: ties, denormals, huge, signed zeros, infinities, NaN.
std::vector<float> special_values() {
  return {0.f, -0.f, 1.f, -1.f, 1.00390625f, 1.005859375f, 3.0e38f, -3.0e38f, 1e-40f, -1e-40f, 1.17549435e-38f,
          65504.f, 65520.f, 6e-8f, 2.98e-8f, kInf, -kInf, kNaN, -kNaN, 0.5f, 1e-3f, 123.456f};
}

void expect_bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    ASSERT_EQ(bits(a[i]), bits(b[i])) << "at " << i << ": " << a[i] << " vs " << b[i];
  }
}

// |a - b| within `ulps` units in the last place of precision p (relative to the larger magnitude), or
// both tiny (below `abs_floor`).
void expect_close(const std::vector<float>& a, const std::vector<float>& b, Precision p, double ulps,
                  double abs_floor = 1e-30) {
  const double unit = p == Precision::kF32 ? std::ldexp(1.0, -23) : p == Precision::kBF16 ? std::ldexp(1.0, -7)
                                                                                           : std::ldexp(1.0, -10);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      ASSERT_TRUE(std::isnan(a[i]) && std::isnan(b[i])) << "at " << i << ": " << a[i] << " vs " << b[i];
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      ASSERT_EQ(a[i], b[i]) << "at " << i;
      continue;
    }
    const double m = std::max(std::fabs(double(a[i])), std::fabs(double(b[i])));
    ASSERT_LE(std::fabs(double(a[i]) - double(b[i])), std::max(ulps * unit * m, abs_floor))
        << "at " << i << ": " << a[i] << " vs " << b[i];
  }
}

TEST(OpsAvx2, RoundActBitExact) {
  REQUIRE_AVX2();
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes) {
      std::vector<float> x = randn(n, 3.f, 1);
      const auto sp = special_values();
      for (int64_t i = 0; i < n; ++i) x[i] = i % 3 == 0 ? sp[i % sp.size()] : x[i];
      std::vector<float> a = x, b = x;
      sc::round_act(a.data(), n, p);
      vx::round_act(b.data(), n, p);
      expect_bit_equal(a, b);
    }
}

// torch.argmax's rule, written out: the first NaN, else the first index of the largest value.
int64_t argmax_reference(const std::vector<float>& x) {
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isnan(x[i])) return static_cast<int64_t>(i);
  int64_t best = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = static_cast<int64_t>(i);
  return best;
}

TEST(Ops, ArgmaxFirstFollowsTorch) {
  const int64_t sizes[] = {0, 1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 1000, 65536, 65537, 131073, 262144};
  std::mt19937 rng(7);
  for (int64_t n : sizes)
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> x = randn(n, 2.f, 100 + trial);
      // bf16-rounded logits tie often: force ties, infinities and NaN at random places
      for (auto& v : x) v = std::round(v * 4.f) / 4.f;
      if (n > 0) {
        std::uniform_int_distribution<int64_t> at(0, n - 1);
        if (trial % 3 == 1) {  // two equal maxima
          x[at(rng)] = 100.f;
          x[at(rng)] = 100.f;
        }
        if (trial % 4 == 2) {
          x[at(rng)] = kInf;
          x[at(rng)] = kInf;
        }
        if (trial % 5 == 3) x[at(rng)] = kNaN;
        if (trial % 6 == 4) std::fill(x.begin(), x.end(), -kInf);  // nothing finite
        if (trial % 7 == 5) x[n - 1] = 1e30f;                      // the maximum in the tail
        if (trial == 11) x[0] = kNaN;
      }
      const int64_t want = argmax_reference(x);
      EXPECT_EQ(sc::argmax_first(x.data(), n), want) << "scalar, n=" << n << " trial " << trial;
      EXPECT_EQ(argmax_first(x.data(), n), want) << "dispatched, n=" << n << " trial " << trial;
      if (have_avx2()) {
        EXPECT_EQ(vx::argmax_first(x.data(), n), want) << "avx2, n=" << n << " trial " << trial;
      }
    }
  // A long row is taken in chunks over the threads (65536 values each): equal maxima, NaNs and the
  // largest value in different chunks.
  std::vector<float> x = randn(262144, 1.f, 300);
  x[70000] = 50.f, x[200000] = 50.f;
  EXPECT_EQ(argmax_first(x.data(), 262144), 70000);  // the first of equal maxima, chunk 1 before chunk 3
  x[5] = 1e30f;
  EXPECT_EQ(argmax_first(x.data(), 262144), 5);
  x[250000] = kNaN, x[150000] = kNaN;
  EXPECT_EQ(argmax_first(x.data(), 262144), 150000);  // the first NaN, though chunk 0 holds the maximum
  x[131072] = kNaN;
  EXPECT_EQ(argmax_first(x.data(), 262144), 131072);
}

TEST(OpsAvx2, AddAndRopeBitExact) {
  REQUIRE_AVX2();
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes) {
      const auto x = randn(n, 2.f, 2), y = randn(n, 2.f, 3);
      std::vector<float> a(x.size()), b(x.size());
      sc::add(x.data(), y.data(), a.data(), n, p);
      vx::add(x.data(), y.data(), b.data(), n, p);
      expect_bit_equal(a, b);
      // RoPE over one head of 2n elements (half = n); the output is written around a guard band.
      std::vector<float> v = randn(2 * n + 2, 1.f, 4), c = randn(n, 1.f, 5), s = randn(n, 1.f, 6);
      std::vector<float> va = v, vb = v;
      sc::rope_head(va.data() + 1, c.data(), s.data(), n, p);
      vx::rope_head(vb.data() + 1, c.data(), s.data(), n, p);
      expect_bit_equal(va, vb);
      // Probability scaling.
      std::vector<float> sa = x, sb = x;
      sc::scale_round_row(sa.data(), n, 0.37f, p);
      vx::scale_round_row(sb.data(), n, 0.37f, p);
      expect_bit_equal(sa, sb);
    }
}

TEST(Ops, AddBiasBitExact) {
  // The public op (dispatched, multithreaded over rows) against the reference's addmm rounding.
  for (Precision p : kPrecisions) {
    const int64_t rows = 67, n = 37, ld = 41;
    auto y = randn(rows * ld, 3.f, 20), b = randn(n, 1.f, 21);
    std::vector<float> want = y;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) want[r * ld + j] = round_one(want[r * ld + j] + b[j], p);
    add_bias(y.data(), rows, n, ld, b.data(), p);
    expect_bit_equal(y, want);
  }
}

TEST(OpsAvx2, Norms) {
  REQUIRE_AVX2();
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes) {
      if (n == 0) continue;
      auto x = randn(n, 5.f, 7), g = randn(n, 1.f, 8), b = randn(n, 1.f, 9);
      if (n > 4) x[3] = 1e-40f;  // a denormal
      for (float scale : {1.f, 1e-20f, 1e15f}) {
        std::vector<float> xs = x;
        for (auto& e : xs) e *= scale;
        std::vector<float> a(n), c(n);
        sc::rms_norm_row(xs.data(), n, g.data(), 1e-6f, a.data(), p);
        vx::rms_norm_row(xs.data(), n, g.data(), 1e-6f, c.data(), p);
        expect_close(a, c, p, p == Precision::kF32 ? 8 : 1);
        sc::layer_norm_row(xs.data(), n, g.data(), b.data(), 1e-6f, a.data(), p);
        vx::layer_norm_row(xs.data(), n, g.data(), b.data(), 1e-6f, c.data(), p);
        expect_close(a, c, p, p == Precision::kF32 ? 4 : 1, 1e-6);
      }
    }
}

// The interleaved rows give each row exactly the one-row kernel's bits, for any row count (whole groups of
// kNormRows and a partial one), row strides wider than the rows, and in place.
TEST(OpsAvx2, RmsNormRowsBitwiseOneRow) {
  REQUIRE_AVX2();
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes) {
      if (n == 0) continue;
      for (int64_t rows : {1, 2, 3, 4, 5, 7, 8, 9}) {
        const int64_t ld = n + 5;
        auto x = randn(rows * ld, 3.f, 11 + rows), g = randn(n, 1.f, 12);
        for (int64_t r = 0; r < rows; ++r) x[r * ld] *= static_cast<float>(r + 1);  // rows of different scales
        std::vector<float> want(rows * n), got(rows * n, -1.f);
        for (int64_t r = 0; r < rows; ++r) vx::rms_norm_row(x.data() + r * ld, n, g.data(), 1e-6f, want.data() + r * n, p);
        vx::rms_norm_rows(x.data(), rows, n, ld, g.data(), 1e-6f, got.data(), n, p);
        expect_bit_equal(got, want);
        std::vector<float> inplace = x;  // y == x, stride ld
        vx::rms_norm_rows(inplace.data(), rows, n, ld, g.data(), 1e-6f, inplace.data(), ld, p);
        for (int64_t r = 0; r < rows; ++r) {
          expect_bit_equal(std::vector<float>(inplace.begin() + r * ld, inplace.begin() + r * ld + n),
                           std::vector<float>(want.begin() + r * n, want.begin() + (r + 1) * n));
          for (int64_t e = n; e < ld && r + 1 < rows; ++e) EXPECT_EQ(inplace[r * ld + e], x[r * ld + e]);  // gaps untouched
        }
      }
    }
}

// The fused block output (post_norm_residual) is bitwise round_act, rms_norm and add in turn: row counts
// that fill kNormRows groups or not, one row (a decode step), 130 rows (over the threads), widths with and
// without a vector tail, special values in the product and the residual.
TEST(Ops, PostNormResidualBitwiseThreeOps) {
  for (Precision p : kPrecisions)
    for (int64_t n : {1, 17, 256, 640})
      for (int64_t rows : {1, 3, 4, 5, 9, 130}) {
        auto x = randn(rows * n, 40.f, 21 + rows), h = randn(rows * n, 5.f, 22), g = randn(n, 1.f, 23);
        const auto sp = special_values();
        for (size_t i = 0; i < sp.size() && rows > 1 && n > 1; ++i) {  // not in row 0: its norm stays finite
          x[n + (i * 7) % ((rows - 1) * n)] = sp[i];
          h[(i * 5) % (rows * n)] = sp[i];
        }
        std::vector<float> wx = x, wh = h;
        round_act(wx.data(), rows * n, p);
        rms_norm(wx.data(), rows, n, n, g.data(), 1e-6f, wx.data(), n, p);
        add(wh.data(), wx.data(), wh.data(), rows * n, p);
        post_norm_residual(x.data(), rows, n, g.data(), 1e-6f, h.data(), p);
        SCOPED_TRACE(::testing::Message() << precision_name(p) << " n=" << n << " rows=" << rows);
        expect_bit_equal(h, wh);
        expect_bit_equal(x, wx);
      }
}

double gelu_ref(double z, bool tanh_approx) {
  if (tanh_approx) return 0.5 * z * (1.0 + std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
  return 0.5 * z * std::erfc(-z / std::sqrt(2.0));
}

TEST(OpsAvx2, GeluAccuracyFp32) {
  REQUIRE_AVX2();
  // A dense sweep over [-12, 12] plus extremes: the vector GELU against double precision. The bound is
  // absolute in units of |z|: 1 + tanh / erfc carry ~1e-7 error, the scalar libm version's own error
  // (its 1 + tanh cancels for negative z) is of the same size.
  std::vector<float> z;
  for (int i = -120000; i <= 120000; ++i) z.push_back(static_cast<float>(i) * 1e-4f);
  for (float e : {1e-30f, -1e-30f, 1e-40f, 30.f, -30.f, 1e4f, -1e4f, 3e38f, -3e38f, 0.f, -0.f}) z.push_back(e);
  for (bool tanh_approx : {true, false}) {
    std::vector<float> a = z, b = z;
    vx::gelu(a.data(), static_cast<int64_t>(a.size()), tanh_approx, Precision::kF32);
    sc::gelu(b.data(), static_cast<int64_t>(b.size()), tanh_approx, Precision::kF32);
    for (size_t i = 0; i < z.size(); ++i) {
      const double r = gelu_ref(z[i], tanh_approx);
      const double tol = 2.5e-7 * std::fabs(double(z[i])) + 1e-38;
      ASSERT_LE(std::fabs(a[i] - r), tol) << "simd z=" << z[i] << " tanh=" << tanh_approx;
      ASSERT_LE(std::fabs(a[i] - b[i]), 2 * tol) << "vs scalar z=" << z[i] << " tanh=" << tanh_approx;
    }
  }
}

TEST(OpsAvx2, GeluMulReducedAndSpecials) {
  REQUIRE_AVX2();
  for (Precision p : kPrecisions)
    for (bool tanh_approx : {true, false})
      for (int64_t n : kSizes) {
        auto g = randn(n, 3.f, 10), u = randn(n, 1.f, 11);
        sc::round_act(g.data(), n, p);
        sc::round_act(u.data(), n, p);
        std::vector<float> a = g, b = g;
        sc::gelu_mul(a.data(), u.data(), n, tanh_approx, p);
        vx::gelu_mul(b.data(), u.data(), n, tanh_approx, p);
        expect_close(a, b, p, p == Precision::kF32 ? 64 : 1, 1e-6);
        // The projections' output rounding is fused: raw (unrounded) inputs give bitwise the result of
        // rounding them first.
        const auto gr = randn(n, 3.f, 12), ur = randn(n, 1.f, 13);
        std::vector<float> g2 = gr, u2 = ur, c = gr, d = gr;
        sc::round_act(g2.data(), n, p);
        sc::round_act(u2.data(), n, p);
        std::vector<float> e = g2, f = g2;
        sc::gelu_mul(c.data(), ur.data(), n, tanh_approx, p);
        sc::gelu_mul(e.data(), u2.data(), n, tanh_approx, p);
        vx::gelu_mul(d.data(), ur.data(), n, tanh_approx, p);
        vx::gelu_mul(f.data(), u2.data(), n, tanh_approx, p);
        if (n == 0) continue;  // (memcmp of empty vectors' null data is undefined)
        ASSERT_EQ(0, std::memcmp(c.data(), e.data(), n * sizeof(float))) << "scalar " << precision_name(p);
        ASSERT_EQ(0, std::memcmp(d.data(), f.data(), n * sizeof(float))) << "avx2 " << precision_name(p);
      }
  std::vector<float> s = {kNaN, kInf, -kInf, 0.f, -0.f, 1e-40f};
  for (bool tanh_approx : {true, false}) {
    std::vector<float> a = s, b = s;
    sc::gelu(a.data(), 6, tanh_approx, Precision::kF32);
    vx::gelu(b.data(), 6, tanh_approx, Precision::kF32);
    EXPECT_TRUE(std::isnan(b[0]));
    EXPECT_EQ(b[1], kInf);
    EXPECT_TRUE(b[2] == 0.f || std::isnan(b[2])) << b[2];  // -inf * 0: NaN in libm too
    EXPECT_EQ(b[3], 0.f);
    EXPECT_EQ(b[4], 0.f);
    EXPECT_LE(std::fabs(b[5]), 1e-40f);
  }
}

TEST(OpsAvx2, SoftcapTanhAccuracy) {
  REQUIRE_AVX2();
  std::vector<float> x;
  for (int i = -30000; i <= 30000; ++i) x.push_back(static_cast<float>(i) * 2e-3f);
  for (float e : {1e-30f, -1e-30f, 1e-40f, 1e4f, -1e4f, kInf, -kInf}) x.push_back(e);
  const float cap = 30.f;
  std::vector<float> a = x;
  vx::softcap(a.data(), static_cast<int64_t>(a.size()), cap, Precision::kF32);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = std::tanh(double(x[i] / cap));
    const double r = double(static_cast<float>(t)) * cap;
    ASSERT_LE(std::fabs(a[i] - r), 3 * std::ldexp(1.0, -23) * std::fabs(r) + 1e-44) << "x=" << x[i];
  }
  std::vector<float> nan = {kNaN};
  vx::softcap(nan.data(), 1, cap, Precision::kF32);
  EXPECT_TRUE(std::isnan(nan[0]));
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes) {
      auto y = randn(n, 40.f, 12);
      std::vector<float> c = y, d = y;
      sc::softcap(c.data(), n, cap, p);
      vx::softcap(d.data(), n, cap, p);
      expect_close(c, d, p, p == Precision::kF32 ? 4 : 1);
    }
}

TEST(OpsAvx2, ExpSumAccuracy) {
  REQUIRE_AVX2();
  // exp over [-110, 0] (down into subnormal results) and -inf: within 2 ulp of double exp.
  std::vector<float> s;
  for (int i = 0; i <= 110000; ++i) s.push_back(-static_cast<float>(i) * 1e-3f);
  s.push_back(-kInf);
  s.push_back(-1e30f);
  const float mx = 0.f;
  std::vector<float> e = s;
  const float sum = vx::exp_sum_row(e.data(), static_cast<int64_t>(e.size()), mx);
  double ref_sum = 0.0;
  for (size_t i = 0; i < s.size(); ++i) {
    const double r = std::exp(double(s[i]) - mx);
    ref_sum += r;
    ASSERT_LE(std::fabs(e[i] - r), 2 * std::ldexp(1.0, -23) * r + 1.5e-45) << "x=" << s[i];
  }
  EXPECT_NEAR(sum, ref_sum, 1e-5 * ref_sum);
  // Large positive arguments and the max shift.
  std::vector<float> big = {88.f, 88.7f, 89.f, 100.f, kInf, kNaN, -88.f, -100.f, -104.f, -200.f};
  std::vector<float> eb = big;
  vx::exp_sum_row(eb.data(), static_cast<int64_t>(eb.size()), 0.f);
  for (size_t i = 0; i < big.size(); ++i) {
    const float r = std::exp(big[i]);
    if (std::isnan(r)) {
      EXPECT_TRUE(std::isnan(eb[i]));
    } else if (std::isinf(r)) {
      EXPECT_EQ(eb[i], r) << big[i];
    } else {
      EXPECT_LE(std::fabs(eb[i] - r), 2 * std::ldexp(1.0, -23) * r + 1.5e-45) << big[i];
    }
  }
  // Against the scalar kernel on every size, with masked (-inf) entries; a row with max -inf gives zeros.
  for (int64_t n : kSizes) {
    auto x = randn(n, 4.f, 13);
    for (int64_t i = 0; i < n; i += 5) x[i] = -kInf;
    float m = -kInf;
    for (float v : x) m = std::max(m, v);
    std::vector<float> a = x, b = x;
    const float sa = sc::exp_sum_row(a.data(), n, m), sb = vx::exp_sum_row(b.data(), n, m);
    expect_close(a, b, Precision::kF32, 2, 1e-44);
    EXPECT_NEAR(sa, sb, 1e-6 * std::max(sa, 1.f));
    std::vector<float> z(n, -kInf);
    EXPECT_EQ(vx::exp_sum_row(z.data(), n, -kInf), 0.f);
    for (float v : z) EXPECT_EQ(v, 0.f);
  }
}

// The AVX-512 softmax kernels compute bitwise what the AVX2 ones compute (values and sum), on every
// size (whole zmm blocks, a following ymm block, a masked tail) and on the special values.
TEST(OpsAvx512, ExpSumAndScaleRoundSameBitsAsAvx2) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 100, 4096, 4099};
  for (int64_t n : sizes) {
    auto x = randn(n, 6.f, 17);
    for (int64_t i = 0; i < n; i += 7) x[i] = -kInf;
    if (n > 20) {
      x[3] = kNaN, x[11] = 95.f, x[12] = -120.f, x[19] = -1e30f;
    }
    float m = -kInf;
    for (float v : x)
      if (!std::isnan(v) && v < 90.f) m = std::max(m, v);
    std::vector<float> a = x, b = x;
    const float sa = vx::exp_sum_row(a.data(), n, m), sb = kern::avx512::exp_sum_row(b.data(), n, m);
    const auto same = [](const std::vector<float>& u, const std::vector<float>& v) {  // (memcmp: not on null)
      return u.size() == v.size() && (u.empty() || std::memcmp(u.data(), v.data(), u.size() * 4) == 0);
    };
    ASSERT_TRUE(same(a, b)) << "exp values, n=" << n;
    ASSERT_EQ(bits(sa), bits(sb)) << "sum, n=" << n;
    for (Precision p : kPrecisions) {
      std::vector<float> c = x, d = x;
      vx::scale_round_row(c.data(), n, 0.0883883f, p);
      kern::avx512::scale_round_row(d.data(), n, 0.0883883f, p);
      ASSERT_TRUE(same(c, d)) << "scale_round, n=" << n;
    }
  }
}

// exp_sum_row's in-range fast path (vscalefps, no clamps: exponents in [-87, 88]) gives exp16's bits: every
// 211th float of [-110, 95] (the range's edges, the clamps' and the subnormal results' neighbours beyond it),
// in rows of whole groups, against the AVX2 kernel.
TEST(OpsAvx512, ExpSumInRangePathSameBitsAsAvx2) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<float> xs;
  const auto add_range = [&](float from, float to) {  // from <= to, same sign
    uint32_t a = bits(from), b = bits(to);
    if (a > b) std::swap(a, b);
    for (uint64_t u = a; u <= b; u += 211) {
      float f;
      const uint32_t v = static_cast<uint32_t>(u);
      std::memcpy(&f, &v, 4);
      xs.push_back(f);
    }
  };
  add_range(-110.f, -0.f);
  add_range(0.f, 95.f);
  for (float f : {-87.f, -86.99999f, -87.00001f, 88.f, 87.99999f, 88.00001f, 88.7228f, -103.9f}) xs.push_back(f);
  const int64_t row = 4096;
  xs.resize((xs.size() + row - 1) / row * row, 1.f);
  for (size_t at = 0; at < xs.size(); at += row) {
    std::vector<float> a(xs.begin() + static_cast<std::ptrdiff_t>(at), xs.begin() + static_cast<std::ptrdiff_t>(at + row));
    std::vector<float> b = a;
    const float sa = vx::exp_sum_row(a.data(), row, 0.f), sb = kern::avx512::exp_sum_row(b.data(), row, 0.f);
    for (int64_t i = 0; i < row; ++i) ASSERT_EQ(bits(a[i]), bits(b[i])) << "exp(" << xs[at + i] << ")";
    ASSERT_EQ(bits(sa), bits(sb)) << "row at " << at;
  }
}

// The fused score finish and exponentiation (finish_exp_sum_row) stores bitwise the AVX2 kernels' finish then
// exp_sum, and returns their sum: every precision, with and without a softcap, masked ends of every size,
// rows with no masked key (its one-pass path), special values, and a row holding a NaN.
TEST(OpsAvx512, FinishExpSumSameBitsAsFinishThenExpSum) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 200, 4096, 4099};
  const float cap = 30.f;
  for (int64_t n : sizes)
    for (int variant = 0; variant < 4; ++variant) {
      auto x = randn(n, variant == 1 ? 400.f : 40.f, 29 + static_cast<uint32_t>(variant));
      if (variant == 2 && n > 20) x[5] = 1e-40f, x[6] = -0.f, x[7] = 3e38f, x[8] = -kInf, x[9] = kInf;
      if (variant == 3 && n > 0) x[n / 2] = kNaN;
      for (const auto& lh : {std::array<int64_t, 2>{0, n}, std::array<int64_t, 2>{3, n - 2},
                             std::array<int64_t, 2>{-4, n / 2}, std::array<int64_t, 2>{n / 3, n + 5},
                             std::array<int64_t, 2>{n, n}, std::array<int64_t, 2>{64, n - 70}})
        for (Precision p : kPrecisions)
          for (const float* c : {static_cast<const float*>(nullptr), &cap})
            for (float scale : {0.0625f, 0.11785113f, -0.5f}) {
              SCOPED_TRACE("n=" + std::to_string(n) + " variant " + std::to_string(variant) + " lo=" +
                           std::to_string(lh[0]) + " hi=" + std::to_string(lh[1]) + " precision " +
                           std::to_string(static_cast<int>(p)) + (c ? " softcap" : "") + " scale " +
                           std::to_string(scale));
              std::vector<float> a = x, b = x;
              const float sa = vx::exp_sum_row(a.data(), n, vx::finish_scores_row(a.data(), n, lh[0], lh[1], scale, c, p));
              const float sb = kern::avx512::finish_exp_sum_row(b.data(), n, lh[0], lh[1], scale, c, p);
              if (variant == 3 && n > 0 && lh[0] <= n / 2 && n / 2 < lh[1]) {
                // A visible NaN: the same sum (NaN, or 0 for a row of only the NaN); the values may differ as
                // finish_scores_row's maximum does (FinishScoresAndBf16ProbabilitiesSameBitsAsAvx2).
                ASSERT_TRUE(bits(sa) == bits(sb) || (std::isnan(sa) && std::isnan(sb))) << sa << " vs " << sb;
                continue;
              }
              for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(a[i]), bits(b[i])) << "at " << i;
              ASSERT_EQ(bits(sa), bits(sb)) << sa << " vs " << sb;
            }
    }
}

// The AVX-512 score finish (round, scale, round, softcap, mask) stores bitwise the AVX2 kernel's scores, in
// every precision, with and without a softcap, masked ends of every size, and its maximum (rows without a
// NaN: max is exact, in any order). And the probabilities written as bf16 for P·V are the high halves of
// scale_round_row's bf16 results, with a zero after an odd row.
TEST(OpsAvx512, FinishScoresAndBf16ProbabilitiesSameBitsAsAvx2) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 100, 4096, 4099};
  const float cap = 30.f;
  for (int64_t n : sizes) {
    auto x = randn(n, 40.f, 23);
    if (n > 20) x[5] = 1e-40f, x[6] = -0.f, x[7] = 3e38f, x[8] = -kInf;
    for (const auto& lh : {std::array<int64_t, 2>{0, n}, std::array<int64_t, 2>{3, n - 2}, std::array<int64_t, 2>{-4, n / 2},
                           std::array<int64_t, 2>{n / 3, n + 5}, std::array<int64_t, 2>{n, n}})
      for (Precision p : kPrecisions)
        for (const float* c : {static_cast<const float*>(nullptr), &cap}) {
          SCOPED_TRACE("n=" + std::to_string(n) + " lo=" + std::to_string(lh[0]) + " hi=" + std::to_string(lh[1]) +
                       " precision " + std::to_string(static_cast<int>(p)) + (c ? " softcap" : ""));
          std::vector<float> a = x, b = x;
          const float ma = vx::finish_scores_row(a.data(), n, lh[0], lh[1], 0.0625f, c, p);
          const float mb = kern::avx512::finish_scores_row(b.data(), n, lh[0], lh[1], 0.0625f, c, p);
          ASSERT_TRUE(a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
          ASSERT_EQ(ma, mb);
        }
    if (n > 0) {  // a NaN score: stored the same (the maximum then depends on where max meets it, in both)
      std::vector<float> a = x, b = x;
      a[n / 2] = b[n / 2] = kNaN;
      vx::finish_scores_row(a.data(), n, 0, n, 0.0625f, nullptr, Precision::kBF16);
      kern::avx512::finish_scores_row(b.data(), n, 0, n, 0.0625f, nullptr, Precision::kBF16);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "n=" << n;
    }
    // Probabilities: exp'd scores times 1/sum, rounded to bf16.
    std::vector<float> e = x;
    for (auto& v : e) v = std::fabs(v) * 0.01f;
    if (n > 0) e[0] = 1e-41f;  // a subnormal probability
    if (n > 20) e[17] = kNaN, e[18] = kInf, e[19] = 1e-38f;  // (1e-38 * 0.37: subnormal in a whole block)
    std::vector<float> r = e;
    vx::scale_round_row(r.data(), n, 0.37f, Precision::kBF16);
    std::vector<uint16_t> got(static_cast<size_t>(n + 2), 0xabcd);
    kern::avx512::scale_round_row_bf16(e.data(), n, 0.37f, got.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(r[i]) >> 16, got[i]) << "n=" << n << " i=" << i;
    ASSERT_EQ(got[n], n % 2 ? 0 : 0xabcd) << "n=" << n;
    ASSERT_EQ(got[n + 1], 0xabcd) << "n=" << n;
  }
}

// The AVX-512 element-wise ops (GELU in both forms, fused with the up product or alone, the rounding of
// activations, the residual add) compute bitwise what the AVX2 ones compute, in every precision, on
// every size (whole zmm blocks and an AVX2 tail) and on the special values: NaN, ±inf, the ends of
// tanh's and erfc's ranges, signed zeros, subnormals.
TEST(OpsAvx512, ElementwiseSameBitsAsAvx2) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 80, 100, 4096, 4099};
  const float specials[] = {kNaN, kInf, -kInf, 0.f, -0.f, 1e-40f, -1e-40f, 9.1f, -9.1f, 0.625f, -0.625f, 12.f, -12.f,
                            1e30f, -1e30f, 3.4e38f, -3.4e38f, 0.6249f, 20.f, -20.f};
  // Same bits, but for a NaN's sign (which operand's NaN a product passes on is the compiler's choice
  // of operand order; no result depends on it).
  const auto same = [](const std::vector<float>& u, const std::vector<float>& v) {
    if (u.size() != v.size()) return false;
    for (size_t i = 0; i < u.size(); ++i)
      if (bits(u[i]) != bits(v[i]) && !(std::isnan(u[i]) && std::isnan(v[i]))) return false;
    return true;
  };
  for (int64_t n : sizes) {
    auto x = randn(n, 4.f, 21), y = randn(n, 2.f, 22);
    for (int64_t i = 0; i < n; i += 3) x[i] = specials[(i / 3) % std::size(specials)];
    for (int64_t i = 1; i < n; i += 5) y[i] = specials[(i / 5 + 7) % std::size(specials)];
    for (Precision p : kPrecisions) {
      for (bool tanh_approx : {true, false}) {
        std::vector<float> a = x, b = x;
        vx::gelu_mul(a.data(), y.data(), n, tanh_approx, p);
        kern::avx512::gelu_mul(b.data(), y.data(), n, tanh_approx, p);
        ASSERT_TRUE(same(a, b)) << "gelu_mul n=" << n << " tanh=" << tanh_approx;
        a = x, b = x;
        vx::gelu(a.data(), n, tanh_approx, p);
        kern::avx512::gelu(b.data(), n, tanh_approx, p);
        ASSERT_TRUE(same(a, b)) << "gelu n=" << n << " tanh=" << tanh_approx;
      }
      std::vector<float> a = x, b = x;
      vx::round_act(a.data(), n, p);
      kern::avx512::round_act(b.data(), n, p);
      ASSERT_TRUE(same(a, b)) << "round_act n=" << n;
      std::vector<float> c(n), d(n);
      vx::add(x.data(), y.data(), c.data(), n, p);
      kern::avx512::add(x.data(), y.data(), d.data(), n, p);
      ASSERT_TRUE(same(c, d)) << "add n=" << n;
    }
  }
}

TEST(OpsAvx2, FinishScoresMasksAndRounds) {
  REQUIRE_AVX2();
  const float cap = 50.f;
  for (Precision p : kPrecisions)
    for (int64_t n : kSizes)
      for (const float* c : {static_cast<const float*>(nullptr), &cap})
        for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, n}, {-5, n + 5}, {3, n - 2}, {n / 2, n / 2 + 9},
                              {n + 1, n + 4}, {-9, -2}}) {
          auto x = randn(n, 30.f, 14);
          std::vector<float> a = x, b = x;
          const float ma = sc::finish_scores_row(a.data(), n, lo, hi, 0.125f, c, p);
          const float mb = vx::finish_scores_row(b.data(), n, lo, hi, 0.125f, c, p);
          if (c == nullptr) {
            expect_bit_equal(a, b);
            EXPECT_EQ(ma, mb);
          } else {
            expect_close(a, b, p, p == Precision::kF32 ? 4 : 1);
          }
          float m = -kInf;
          for (int64_t i = 0; i < n; ++i) {
            const bool visible = i >= lo && i < hi;
            if (!visible) {
              ASSERT_EQ(b[i], -kInf) << i;
            }
            m = std::max(m, b[i]);
          }
          EXPECT_EQ(mb, m);
        }
}

using HeadsDot = void (*)(const float*, int64_t, int64_t, const KvRows&, int64_t, int64_t, int64_t, float*, int64_t);
using HeadsAxpy = void (*)(const float*, int64_t, int64_t, const KvRows&, int64_t, int64_t, int64_t, float*, int64_t);

// One head (fp32 rows): the dot products and the weighted row sums against double precision, for key
// counts around the kernels' two-key steps and widths around their 8- and 16-column steps; both ISAs.
TEST(OpsHeads, OneHeadMatchesDouble) {
  for (int64_t d : {1, 7, 8, 13, 16, 17, 33, 72, 256})
    for (int64_t n : {0, 1, 3, 4, 5, 9, 130}) {
      const int64_t ld = d + 3;
      auto q = randn(d, 1.f, 15), k = randn(n * ld, 1.f, 16), w = randn(n, 1.f, 17), a0 = randn(d, 1.f, 18);
      KvRows r;
      r.f = k.data();
      const auto check = [&](HeadsDot dot_heads, HeadsAxpy axpy_heads) {
        std::vector<float> s(n), acc = a0;
        dot_heads(q.data(), d, 1, r, ld, n, d, s.data(), n);
        axpy_heads(w.data(), n, 1, r, ld, n, d, acc.data(), d);
        for (int64_t c = 0; c < n; ++c) {
          double ref = 0, mag = 0;
          for (int64_t e = 0; e < d; ++e) ref += double(q[e]) * k[c * ld + e], mag += std::fabs(double(q[e]) * k[c * ld + e]);
          ASSERT_NEAR(s[c], ref, 1e-6 * mag + 1e-30) << d << " " << n;
        }
        for (int64_t e = 0; e < d; ++e) {
          double ref = a0[e], mag = std::fabs(a0[e]);
          for (int64_t c = 0; c < n; ++c) ref += double(w[c]) * k[c * ld + e], mag += std::fabs(double(w[c]) * k[c * ld + e]);
          ASSERT_NEAR(acc[e], ref, 1e-6 * mag + 1e-30) << d << " " << n;
        }
      };
      check(sc::dot_rows_heads, sc::axpy_rows_heads);
      if (have_avx2()) check(vx::dot_rows_heads, vx::axpy_rows_heads);
    }
}

// The multi-head kernels (the query heads sharing a kv head) with fp32 or bf16 rows give per head bitwise
// what each head gets alone (nh = 1) on fp32 rows holding the (widened) values, for 1-6 heads (groups of 4
// and a remainder), tails (d not a multiple of 8 or 16), odd key counts; both ISAs.
TEST(OpsHeads, Fp32AndBf16RowsEqualOneHeadFp32) {
  for (int64_t nh : {1, 2, 3, 4, 6})
    for (int64_t d : {5, 16, 40, 256})
      for (int64_t n : {1, 2, 7, 33}) {
        const int64_t ld = d + 8, ldq = d + 1, lds = n + 3;
        const auto q = randn(nh * ldq, 1.f, 30), w = randn(nh * lds, 1.f, 31), a0 = randn(nh * d, 1.f, 32);
        const auto kf = randn(n * ld, 1.f, 33);
        std::vector<uint16_t> kb(kf.size());
        std::vector<float> kw(kf.size());  // kb widened
        for (size_t i = 0; i < kf.size(); ++i) {
          kb[i] = static_cast<uint16_t>(bits(kf[i]) >> 16);
          const uint32_t u = static_cast<uint32_t>(kb[i]) << 16;
          std::memcpy(&kw[i], &u, 4);
        }
        const auto check = [&](HeadsDot dot_heads, HeadsAxpy axpy_heads) {
          for (bool bf : {false, true}) {
            KvRows r;
            if (bf) r.b = kb.data();
            else r.f = kf.data();
            const std::vector<float>& plain = bf ? kw : kf;
            std::vector<float> s1(nh * lds, 0.f), s2 = s1, acc1 = a0, acc2 = a0;
            dot_heads(q.data(), ldq, nh, r, ld, n, d, s1.data(), lds);
            axpy_heads(w.data(), lds, nh, r, ld, n, d, acc1.data(), d);
            KvRows one;
            one.f = plain.data();
            for (int64_t h = 0; h < nh; ++h) {
              dot_heads(q.data() + h * ldq, ldq, 1, one, ld, n, d, s2.data() + h * lds, lds);
              axpy_heads(w.data() + h * lds, lds, 1, one, ld, n, d, acc2.data() + h * d, d);
            }
            ASSERT_EQ(0, std::memcmp(s1.data(), s2.data(), s1.size() * sizeof(float))) << nh << " " << d << " " << n << " " << bf;
            ASSERT_EQ(0, std::memcmp(acc1.data(), acc2.data(), acc1.size() * sizeof(float))) << nh << " " << d << " " << n << " " << bf;
          }
        };
        check(sc::dot_rows_heads, sc::axpy_rows_heads);
        if (have_avx2()) check(vx::dot_rows_heads, vx::axpy_rows_heads);
      }
}

// int8 rows with a scale per row: the dot products are scale * (q · row) and the update adds
// (w * scale) * row, i.e. the products with the dequantized rows up to fp32 rounding; both ISAs.
TEST(OpsHeads, Int8RowsComputeWithTheDequantizedRows) {
  for (int64_t nh : {1, 4, 5})
    for (int64_t d : {7, 32, 256})
      for (int64_t n : {1, 6, 37}) {
        const int64_t ld = d + 4, sld = 3, lds = n;
        const auto q = randn(nh * d, 1.f, 40), w = randn(nh * n, 1.f, 41), a0 = randn(nh * d, 1.f, 42);
        std::vector<int8_t> k8(static_cast<size_t>(n * ld));
        std::vector<float> scale(static_cast<size_t>(n * sld));
        std::mt19937 rng(43);
        for (auto& x : k8) x = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
        for (auto& x : scale) x = 0.001f + static_cast<float>(rng() % 1000) * 1e-5f;
        KvRows r;
        r.q = k8.data();
        r.s = scale.data();
        r.sld = sld;
        const auto check = [&](HeadsDot dot_heads, HeadsAxpy axpy_heads) {
          std::vector<float> s(nh * lds), acc = a0;
          dot_heads(q.data(), d, nh, r, ld, n, d, s.data(), lds);
          axpy_heads(w.data(), n, nh, r, ld, n, d, acc.data(), d);
          for (int64_t h = 0; h < nh; ++h) {
            for (int64_t c = 0; c < n; ++c) {
              double ref = 0, mag = 0;
              for (int64_t e = 0; e < d; ++e) {
                const double x = double(q[h * d + e]) * k8[c * ld + e] * scale[c * sld];
                ref += x;
                mag += std::fabs(x);
              }
              ASSERT_NEAR(s[h * lds + c], ref, 1e-6 * mag + 1e-30) << nh << " " << d << " " << n;
            }
            for (int64_t e = 0; e < d; ++e) {
              double ref = a0[h * d + e], mag = std::fabs(ref);
              for (int64_t c = 0; c < n; ++c) {
                const double x = double(w[h * n + c]) * scale[c * sld] * k8[c * ld + e];
                ref += x;
                mag += std::fabs(x);
              }
              ASSERT_NEAR(acc[h * d + e], ref, 1e-6 * mag + 1e-30) << nh << " " << d << " " << n;
            }
          }
        };
        check(sc::dot_rows_heads, sc::axpy_rows_heads);
        if (have_avx2()) check(vx::dot_rows_heads, vx::axpy_rows_heads);
      }
}

// The AVX-512 Q·K and P·V rows give bitwise the AVX2 kernels' results (the same chains of FMAs, the same
// horizontal sums) for fp32, bf16 and int8 rows, 1-6 heads, widths around the 8-, 16- and 32-column steps,
// odd and even key counts.
TEST(OpsHeads, Avx512DotAndAxpySameBitsAsAvx2) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t nh : {1, 3, 4, 6})
    for (int64_t d : {1, 7, 16, 17, 31, 32, 40, 72, 256})
      for (int64_t n : {0, 1, 2, 3, 4, 6, 37, 39}) {
        const int64_t ld = d + 5, sld = 2, lds = n + 1, ldq = d + 3;
        const auto w = randn(nh * lds, 1.f, 50), a0 = randn(nh * d, 1.f, 51), vf = randn(n * ld, 1.f, 52);
        const auto q = randn(nh * ldq, 1.f, 53);
        std::vector<uint16_t> vb(vf.size());
        std::vector<int8_t> v8(vf.size());
        std::vector<float> scale(static_cast<size_t>(n * sld) + 1);
        for (size_t i = 0; i < vf.size(); ++i) {
          vb[i] = static_cast<uint16_t>(bits(vf[i]) >> 16);
          v8[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
        }
        for (size_t i = 0; i < scale.size(); ++i) scale[i] = 0.002f + static_cast<float>(i % 13) * 1e-4f;
        for (int form = 0; form < 3; ++form) {
          KvRows r;
          if (form == 0) r.f = vf.data();
          if (form == 1) r.b = vb.data();
          if (form == 2) r.q = v8.data(), r.s = scale.data(), r.sld = sld;
          std::vector<float> a2 = a0, a5 = a0;
          vx::axpy_rows_heads(w.data(), lds, nh, r, ld, n, d, a2.data(), d);
          kern::avx512::axpy_rows_heads(w.data(), lds, nh, r, ld, n, d, a5.data(), d);
          ASSERT_EQ(0, std::memcmp(a2.data(), a5.data(), a2.size() * sizeof(float)))
              << "axpy nh=" << nh << " d=" << d << " n=" << n << " form=" << form;
          std::vector<float> s2(static_cast<size_t>(nh * lds), -1.f), s5 = s2;
          vx::dot_rows_heads(q.data(), ldq, nh, r, ld, n, d, s2.data(), lds);
          kern::avx512::dot_rows_heads(q.data(), ldq, nh, r, ld, n, d, s5.data(), lds);
          ASSERT_EQ(0, std::memcmp(s2.data(), s5.data(), s2.size() * sizeof(float)))
              << "dot nh=" << nh << " d=" << d << " n=" << n << " form=" << form;
        }
      }
}

}  // namespace
}  // namespace t5g
