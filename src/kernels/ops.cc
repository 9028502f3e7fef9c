#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <omp.h>

#include "kernels/cpu_features.h"
#include "kernels/for_rows.h"
#include "kernels/ops_internal.h"
#include "util/bf16.h"

namespace t5g {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kF32: return "f32";
    case Precision::kBF16: return "bf16";
    case Precision::kF16: return "f16";
  }
  return "?";
}

float round_one(float x, Precision p) {
  switch (p) {
    case Precision::kF32: return x;
    case Precision::kBF16: return round_bf16(x);
    case Precision::kF16: return round_f16(x);
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Scalar kernels: the definition of every op (and the fallback without AVX2).
namespace kern::scalar {

void round_act(float* x, int64_t n, Precision p) {
  if (p == Precision::kF32) return;
  if (p == Precision::kBF16) {
    for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = round_f16(x[i]);
  }
}

void rms_norm_row(const float* x, int64_t n, const float* gain, float eps, float* y, Precision p) {
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * inv) * gain[i];
  scalar::round_act(y, n, p);
}

void layer_norm_row(const float* x, int64_t n, const float* w, const float* b, float eps, float* y, Precision p) {
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float m = static_cast<float>(mean);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * inv * w[i] + b[i];
  scalar::round_act(y, n, p);
}

namespace {
inline float gelu_one(float z, bool tanh_approx) {
  if (tanh_approx) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    return 0.5f * z * (1.0f + std::tanh(k * (z + 0.044715f * z * z * z)));
  }
  return 0.5f * z * (1.0f + std::erf(z * 0.7071067811865476f));
}
}  // namespace

void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p) {
  for (int64_t i = 0; i < n; ++i)
    gate[i] = round_one(round_one(gelu_one(round_one(gate[i], p), tanh_approx), p) * round_one(up[i], p), p);
}

void gelu(float* x, int64_t n, bool tanh_approx, Precision p) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_one(gelu_one(x[i], tanh_approx), p);
}

void add(const float* a, const float* b, float* y, int64_t n, Precision p) {
  for (int64_t i = 0; i < n; ++i) y[i] = round_one(a[i] + b[i], p);
}

void rope_head(float* v, const float* c, const float* s, int64_t half, Precision p) {
  for (int64_t j = 0; j < half; ++j) {
    const float a = v[j], b = v[j + half];
    // x*cos + rotate_half(x)*sin with rotate_half(x) = [-x2, x1]; each op rounded as in the reference.
    v[j] = round_one(round_one(a * c[j], p) + round_one(-b * s[j], p), p);
    v[j + half] = round_one(round_one(b * c[j], p) + round_one(a * s[j], p), p);
  }
}

void softcap(float* x, int64_t n, float cap, Precision p) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_one(round_one(std::tanh(round_one(x[i] / cap, p)), p) * cap, p);
}

int64_t argmax_first(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return i;
    if (x[i] > x[best]) best = i;
  }
  return best;
}

float finish_scores_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p) {
  clamp_visible_keys(n, lo, hi);
  mask_invisible_keys(s, n, lo, hi);
  float m = -INFINITY;
  for (int64_t i = lo; i < hi; ++i) {
    float x = round_one(round_one(s[i], p) * scale, p);
    if (cap != nullptr) x = round_one(round_one(std::tanh(round_one(x / *cap, p)), p) * *cap, p);
    s[i] = x;
    m = std::max(m, x);
  }
  return m;
}

float exp_sum_row(float* s, int64_t n, float max) {
  if (max == -INFINITY) {
    std::fill(s, s + n, 0.f);
    return 0.f;
  }
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    s[i] = std::exp(s[i] - max);
    sum += s[i];
  }
  return sum;
}

void scale_round_row(float* s, int64_t n, float f, Precision p) {
  for (int64_t i = 0; i < n; ++i) s[i] = round_one(s[i] * f, p);
}

namespace {
// Element e of row c, widened to fp32 before any scale (f, b) or as the integer (q).
inline float kv_elem(const KvRows& r, int64_t i) {
  if (r.f) return r.f[i];
  if (r.b) return bf16_to_f32(r.b[i]);
  return static_cast<float>(r.q[i]);
}
}  // namespace

void dot_rows_heads(const float* q, int64_t ldq, int64_t nh, const KvRows& k, int64_t ldk, int64_t n, int64_t d,
                    float* s, int64_t lds) {
  for (int64_t h = 0; h < nh; ++h)
    for (int64_t c = 0; c < n; ++c) {
      float acc = 0.f;
      for (int64_t e = 0; e < d; ++e) acc += q[h * ldq + e] * kv_elem(k, c * ldk + e);
      s[h * lds + c] = k.q ? acc * k.s[c * k.sld] : acc;
    }
}

void axpy_rows_heads(const float* w, int64_t ldw, int64_t nh, const KvRows& v, int64_t ldv, int64_t n, int64_t d,
                     float* acc, int64_t lda) {
  for (int64_t h = 0; h < nh; ++h)
    for (int64_t c = 0; c < n; ++c) {
      const float wc = v.q ? w[h * ldw + c] * v.s[c * v.sld] : w[h * ldw + c];
      for (int64_t e = 0; e < d; ++e) acc[h * lda + e] += wc * kv_elem(v, c * ldv + e);
    }
}

}  // namespace kern::scalar

// ---------------------------------------------------------------------------------------------
// Dispatch: AVX2 kernels when the CPU (and T5G_ISA) allow them; AVX-512 ones (bitwise the AVX2 results)
// for the ops over the widest arrays, where the exp / tanh polynomials are compute-bound: GELU was 8% of
// a 128-token encode on 8 lanes.
namespace {
inline bool use_avx2() {
  static const bool v = active_isa() >= Isa::kAvx2;
  return v;
}
inline bool use_avx512() {
  static const bool v = active_isa() >= Isa::kAvx512;
  return v;
}
}  // namespace
#define T5G_DISPATCH(fn, ...) (use_avx2() ? kern::avx2::fn(__VA_ARGS__) : kern::scalar::fn(__VA_ARGS__))
#define T5G_DISPATCH_WIDE(fn, ...) (use_avx512() ? kern::avx512::fn(__VA_ARGS__) : T5G_DISPATCH(fn, __VA_ARGS__))

namespace {
// rms_norm's rows go in groups: kNormRows interleaved rows for the AVX2 kernel, one row for the scalar one.
inline int64_t norm_group_rows() { return use_avx2() ? kern::avx2::kNormRows : 1; }
// One group of m rows.
void rms_norm_group(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
                    int64_t ldy, Precision p) {
  if (use_avx2()) kern::avx2::rms_norm_rows(x, m, n, ldx, gain, eps, y, ldy, p);
  else
    for (int64_t r = 0; r < m; ++r) kern::scalar::rms_norm_row(x + r * ldx, n, gain, eps, y + r * ldy, p);
}
}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
              int64_t ldy, Precision p) {
  const int64_t G = norm_group_rows();
  for_rows((rows + G - 1) / G, rows * n > 32768, [&](int64_t g) {
    rms_norm_group(x + g * G * ldx, std::min(G, rows - g * G), n, ldx, gain, eps, y + g * G * ldy, ldy, p);
  });
}

void post_norm_residual(float* x, int64_t rows, int64_t n, const float* gain, float eps, float* h, Precision p) {
  // rms_norm's groups: each group's rows are rounded, normalised and added while they are in L1.
  const int64_t G = norm_group_rows();
  for_rows((rows + G - 1) / G, rows * n > 32768, [&](int64_t g) {
    const int64_t m = std::min(G, rows - g * G);
    float *xg = x + g * G * n, *hg = h + g * G * n;
    if (p != Precision::kF32) T5G_DISPATCH_WIDE(round_act, xg, m * n, p);
    rms_norm_group(xg, m, n, n, gain, eps, xg, n, p);
    T5G_DISPATCH_WIDE(add, hg, xg, hg, m * n, p);
  });
}

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y,
                Precision p) {
  for_rows(rows, rows * n > 32768, [&](int64_t r) { T5G_DISPATCH(layer_norm_row, x + r * n, n, w, b, eps, y + r * n, p); });
}

// Element-wise ops over long arrays: split into fixed chunks (cache-line aligned boundaries, independent of
// the thread count) so both cores share the work.
namespace {
constexpr int64_t kEwChunk = 16384;
// GELU costs ~3 ns per element (an exp and a division per lane) against well under 1 ns for a rounding or
// an add: its chunks are smaller, so that a batch-8 decode step's MLP activations (8 x 2048 values, ~50 us
// on one core: 6% of the step, the other core waiting) are shared by the threads.
constexpr int64_t kGeluChunk = 4096;
// (One chunk, as every decode step's activations: no parallel region at all.)
template <typename F>
void parallel_chunks(int64_t n, F&& f, int64_t chunk = kEwChunk) {
  const int64_t nc = (n + chunk - 1) / chunk;
  for_rows(nc, nc > 1, [&](int64_t c) { f(c * chunk, std::min(chunk, n - c * chunk)); });
}
}  // namespace

// Long arrays (a batch's logits: 262144 per row) are shared by the threads like the ops below.
void round_act(float* x, int64_t n, Precision p) {
  if (p == Precision::kF32) return;
  parallel_chunks(n, [&](int64_t i, int64_t m) { T5G_DISPATCH_WIDE(round_act, x + i, m, p); });
}

void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p) {
  parallel_chunks(n, [&](int64_t i, int64_t m) { T5G_DISPATCH_WIDE(gelu_mul, gate + i, up + i, m, tanh_approx, p); }, kGeluChunk);
}

void gelu(float* x, int64_t n, bool tanh_approx, Precision p) {
  parallel_chunks(n, [&](int64_t i, int64_t m) { T5G_DISPATCH_WIDE(gelu, x + i, m, tanh_approx, p); }, kGeluChunk);
}

void add(const float* a, const float* b, float* y, int64_t n, Precision p) {
  parallel_chunks(n, [&](int64_t i, int64_t m) { T5G_DISPATCH_WIDE(add, a + i, b + i, y + i, m, p); });
}

void add_bias(float* y, int64_t rows, int64_t n, int64_t ldy, const float* bias, Precision p) {
  for_rows(rows, rows * n > 32768, [&](int64_t r) { T5G_DISPATCH_WIDE(add, y + r * ldy, bias, y + r * ldy, n, p); });
}

RopeTable make_rope_table(const int64_t* positions, int64_t T, int64_t head_dim, double theta, double linear_factor,
                          Precision p) {
  RopeTable t;
  t.half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(t.half));
  for (int64_t j = 0; j < t.half; ++j) {
    // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in fp32; linear: inv_freq / factor.
    const float e = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    const float pw = std::pow(static_cast<float>(theta), e);
    inv_freq[j] = (1.0f / pw) / static_cast<float>(linear_factor);
  }
  t.cos.resize(static_cast<size_t>(T * t.half));
  t.sin.resize(static_cast<size_t>(T * t.half));
  // Over the threads for an encode (its two tables: 128 x 128 double sincos each at 128 tokens, on one
  // core with the other waiting). Each entry is independent of the others.
  for_rows(T, T * t.half >= 4096, [&](int64_t i) {
    const float pos = static_cast<float>(positions[i]);
    for (int64_t j = 0; j < t.half; ++j) {
      const float angle = pos * inv_freq[j];  // fp32 product, as the reference's fp32 matmul
      t.cos[i * t.half + j] = round_one(static_cast<float>(std::cos(static_cast<double>(angle))), p);
      t.sin[i * t.half + j] = round_one(static_cast<float>(std::sin(static_cast<double>(angle))), p);
    }
  });
  return t;
}

void apply_rope(float* x, int64_t T, int64_t ldx, int64_t n_heads, int64_t head_dim, const RopeTable& table,
                Precision p) {
  for_rows(T, T > 16, [&](int64_t t) { apply_rope_row(x + t * ldx, n_heads, head_dim, table, t, p); });
}

void apply_rope_row(float* x, int64_t n_heads, int64_t head_dim, const RopeTable& table, int64_t t, Precision p) {
  const int64_t half = head_dim / 2;
  const float* c = table.cos.data() + t * half;
  const float* s = table.sin.data() + t * half;
  for (int64_t h = 0; h < n_heads; ++h) T5G_DISPATCH(rope_head, x + h * head_dim, c, s, half, p);
}

void softcap(float* x, int64_t n, float cap, Precision p) {
  parallel_chunks(n, [&](int64_t i, int64_t m) { T5G_DISPATCH(softcap, x + i, m, cap, p); });
}

// A logits row (262144 values) in chunks over the threads, each chunk's first NaN or first maximum, then
// the chunks in order: the first NaN of the row if it has one, else the first of its maxima (a later
// chunk wins only with a strictly larger value), as one pass over the row. In a greedy decode step each
// thread reads the part of the row the LM head just wrote into its own cache (batch 1: 29 us serial).
int64_t argmax_first(const float* x, int64_t n) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t nc = (n + kChunk - 1) / kChunk;
  // (Inside any region, active or not, a region of its own would be a nested team: on one thread.)
  if (nc <= 1 || omp_get_level() > 0) return T5G_DISPATCH(argmax_first, x, n);
  std::vector<int64_t> at(static_cast<size_t>(nc));
  for_rows(nc, true, [&](int64_t c) {
    const int64_t a = c * kChunk;
    at[c] = a + T5G_DISPATCH(argmax_first, x + a, std::min(kChunk, n - a));
  });
  int64_t best = at[0];
  for (int64_t c = 0; c < nc && !std::isnan(x[best]); ++c)
    if (std::isnan(x[at[c]]) || x[at[c]] > x[best]) best = at[c];
  return best;
}

void log_softmax(const float* x, int64_t n, float* out) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - lse;
}

}  // namespace t5g
