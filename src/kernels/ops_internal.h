// Internal interface between the element-wise ops' dispatchers (ops.cc, attention.cc: baseline x86-64
// code) and their per-ISA kernels (ops_avx2.cc, compiled with -mavx2 -mfma -mf16c; ops_avx512.cc). Plain
// declarations, and plain templates the per-ISA kernels share (no intrinsics). The scalar versions are the definition of each op; the
// AVX2 ones compute the same expressions in the same order and round at the same points, with
// vector exp/tanh/erfc (a few ulp from libm) and vector reductions (sums in another order).
// Tests call both directly.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/ops.h"

namespace t5g::kern {

// The kernels of one ISA, one row / range each; callers parallelise.
#define T5G_OPS_KERNELS                                                                                              \
  void round_act(float* x, int64_t n, Precision p);                                                                  \
  void rms_norm_row(const float* x, int64_t n, const float* gain, float eps, float* y, Precision p);                 \
  void layer_norm_row(const float* x, int64_t n, const float* w, const float* b, float eps, float* y, Precision p);  \
  void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p);                             \
  void gelu(float* x, int64_t n, bool tanh_approx, Precision p);                                                     \
  void add(const float* a, const float* b, float* y, int64_t n, Precision p);                                        \
  /* One head: v[0..half) and v[half..2half) rotated by c, s (the table row). */                                     \
  void rope_head(float* v, const float* c, const float* s, int64_t half, Precision p);                               \
  void softcap(float* x, int64_t n, float cap, Precision p);                                                         \
  /* torch.argmax of x[0..n): the first NaN if there is one, else the first maximum; 0 when n == 0. */             \
  int64_t argmax_first(const float* x, int64_t n);                                                                   \
  /* Attention logits of one query row: s[c] = finish(s[c]) (round, scale, round, optional softcap) for c in       \
     [lo, hi), -inf outside (masked keys). Returns the row maximum (-inf if nothing is visible). */                  \
  float finish_scores_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p); \
  /* s[c] = exp(s[c] - max) (0 for -inf; all 0 when max is -inf); returns the sum. */                                \
  float exp_sum_row(float* s, int64_t n, float max);                                                                 \
  /* s[c] = round(s[c] * f). */                                                                                      \
  void scale_round_row(float* s, int64_t n, float f, Precision p);                                                   \
  /* Decoder, for nh query heads that share the keys: s_h[c] = dot(q_h, k_c) and acc_h[0..d) += sum_c w_h[c] * v_c \
     (q_h = q + h * ldq, s_h = s + h * lds; w_h = w + h * ldw, acc_h = acc + h * lda; k_c / v_c row c of k / v,     \
     row stride ldk / ldv, c < n), each K/V element loaded once for all heads. Rows in any KvRows form: bf16 rows   \
     give bitwise what fp32 rows holding the widened values give, and every head bitwise what it gets alone      \
     (nh = 1); int8 rows give scale * dot(q, row) and acc += (w * scale) * row. */                                   \
  void dot_rows_heads(const float* q, int64_t ldq, int64_t nh, const KvRows& k, int64_t ldk, int64_t n, int64_t d,   \
                      float* s, int64_t lds);                                                                        \
  void axpy_rows_heads(const float* w, int64_t ldw, int64_t nh, const KvRows& v, int64_t ldv, int64_t n, int64_t d,  \
                       float* acc, int64_t lda);

namespace scalar {
T5G_OPS_KERNELS
}  // namespace scalar

namespace avx2 {
T5G_OPS_KERNELS
// rms_norm_row over rows [0, rows) (row r at x + r·ldx, y + r·ldy; x == y allowed), kNormRows at a time:
// bitwise rms_norm_row on each row. One row's sum of squares is a chain of n/8 dependent FMAs (a 640-wide
// norm waits ~320 cycles on their latency); interleaving rows keeps several chains in flight.
inline constexpr int64_t kNormRows = 4;
void rms_norm_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
                   int64_t ldy, Precision p);
}  // namespace avx2

// AVX-512 (ops_avx512.cc): the softmax's long-row kernels, the decode step's Q·K and P·V rows, and
// the element-wise ops of the widest arrays (the MLP's GELU, the activations' rounding, the residual
// adds), bitwise the AVX2 ones' results.
namespace avx512 {
void round_act(float* x, int64_t n, Precision p);
void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p);
void gelu(float* x, int64_t n, bool tanh_approx, Precision p);
void add(const float* a, const float* b, float* y, int64_t n, Precision p);
float finish_scores_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p);
float exp_sum_row(float* s, int64_t n, float max);
// exp_sum_row(s, n, finish_scores_row(s, n, lo, hi, scale, cap, p)), bitwise, in one pass where it can.
float finish_exp_sum_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p);
void scale_round_row(float* s, int64_t n, float f, Precision p);
// scale_round_row in bf16 precision, written as bf16 (the high halves) to dst[0..n), and dst[n] = 0 for an
// odd n (a bf16 pair row's last pair): the probabilities of a row straight into the P·V GEMM's operand.
void scale_round_row_bf16(const float* s, int64_t n, float f, uint16_t* dst);
void dot_rows_heads(const float* q, int64_t ldq, int64_t nh, const KvRows& k, int64_t ldk, int64_t n, int64_t d,
                    float* s, int64_t lds);
void axpy_rows_heads(const float* w, int64_t ldw, int64_t nh, const KvRows& v, int64_t ldv, int64_t n, int64_t d,
                     float* acc, int64_t lda);
}  // namespace avx512

#undef T5G_OPS_KERNELS

// finish_scores_row's visible keys [lo, hi) of a score row of n, clamped to the row (lo <= hi).
inline void clamp_visible_keys(int64_t n, int64_t& lo, int64_t& hi) {
  lo = std::clamp<int64_t>(lo, 0, n);
  hi = std::clamp<int64_t>(hi, lo, n);
}
// The row's masked keys (outside the clamped [lo, hi)) as -inf scores.
inline void mask_invisible_keys(float* s, int64_t n, int64_t lo, int64_t hi) {
  std::fill(s, s + lo, -std::numeric_limits<float>::infinity());
  std::fill(s + hi, s + n, -std::numeric_limits<float>::infinity());
}

// f.template operator()<P>() with P the compile-time precision index (0 fp32, 1 bf16, 2 f16: Precision's
// order), for the element-wise kernels of every ISA.
template <typename F>
inline void with_precision(Precision p, F&& f) {
  switch (static_cast<int>(p)) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    default: f.template operator()<0>(); break;
  }
}

// The multi-head rows' kernels (dot_rows_heads, axpy_rows_heads) of each ISA:
// f.template operator()<T, NH>(rows, scales, sld, h) with the one row pointer a KvRows holds (T: float,
// uint16_t bf16 or int8_t; int8 rows with their scales, fp32 and bf16 rows with none), for the heads
// [0, nh) in groups of NH <= 4 (h: the group's first head) ...
template <class F>
void for_kv_head_groups(const KvRows& r, int64_t nh, F&& f) {
  const auto groups = [&]<class T>(const T* rows, const float* sc, int64_t sld) {
    for (int64_t h = 0; h < nh; h += 4) {
      switch (std::min<int64_t>(4, nh - h)) {
        case 4: f.template operator()<T, 4>(rows, sc, sld, h); break;
        case 3: f.template operator()<T, 3>(rows, sc, sld, h); break;
        case 2: f.template operator()<T, 2>(rows, sc, sld, h); break;
        default: f.template operator()<T, 1>(rows, sc, sld, h); break;
      }
    }
  };
  if (r.q) groups(r.q, r.s, r.sld);
  else if (r.b) groups(r.b, nullptr, 0);
  else groups(r.f, nullptr, 0);
}

// ... and the rows they prefetch ahead (about 4 KiB): a long input's K / V rows stream from memory, and
// the hardware prefetchers alone left those loops waiting on it (about 5 GB/s per core).
template <class T>
inline int64_t kv_prefetch_rows(int64_t d) {
  return std::max<int64_t>(4, 4096 / (d * static_cast<int64_t>(sizeof(T))));
}
// One row of d values into L1 (prefetcht0 per line).
template <class T>
inline void kv_prefetch_row(const T* p, int64_t d) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int64_t o = 0; o < d * static_cast<int64_t>(sizeof(T)); o += 64) __builtin_prefetch(b + o, 0, 3);
}

}  // namespace t5g::kern
