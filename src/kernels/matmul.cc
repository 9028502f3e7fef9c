// Entry points of the matrix products: pick the kernel for this CPU and the weight format.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>

#include "kernels/cpu_features.h"
#include "kernels/matmul_internal.h"
#include "kernels/ops.h"
#include "kernels/team.h"
#include "util/error.h"

namespace t5g {

namespace kern {

void* scratch(int slot, size_t bytes) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[kNumScratch];
  Buf& b = bufs[slot];
  if (b.p == nullptr || b.n < bytes) {
    size_t n = bytes + bytes / 4;
    n = (n + 63) / 64 * 64;
    if (n < 64) n = 64;
    std::free(b.p);
    b.p = std::aligned_alloc(64, n);
    b.n = b.p ? n : 0;
    if (!b.p) std::abort();
  }
  return b.p;
}

}  // namespace kern

static Isa clamp_isa(Isa isa) {
  const Isa best = active_isa();
  return static_cast<int>(isa) > static_cast<int>(best) ? best : isa;
}

// The AVX512_BF16 (vdpbf16ps) kernels apply: X bf16-representable, the CPU has them, and bf16 weights.
static bool avx512_bf16_dot(const MatmulOptions& opt, WeightType t) {
  return opt.x_is_bf16 && t == WeightType::kBF16 && cpu_features().avx512bf16;
}

// Q8/Q4 products on AVX512_VNNI (matmul_vnni.cc): decode (M <= 8) and the GEMM, one arithmetic.
static bool vnni_decode(int64_t M, WeightType t) {
  return is_quantized(t) && M >= 1 && M <= kern::kDecodeMaxM && cpu_features().avx512vnni;
}
static bool vnni_gemm(int64_t M, WeightType t) {
  return is_quantized(t) && M > kern::kDecodeMaxM && cpu_features().avx512vnni;
}

// Parts that can share one schedule: non-empty, one weight type and K.
static bool same_type_and_k(const MatmulOut* parts, int n) {
  for (int i = 0; i < n; ++i)
    if (parts[i].w->rows <= 0 || parts[i].w->type != parts[0].w->type || parts[i].w->cols != parts[0].w->cols) return false;
  return true;
}

static void check_part_count(int n) {
  check(n >= 1 && n <= kMaxMatmulParts, "matmul_parts: ", n, " products (1 to ", kMaxMatmulParts, " allowed)");
}

void matmul_isa(Isa isa, const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
                const MatmulOptions& opt) {
  switch (clamp_isa(isa)) {
    case Isa::kAvx512: {
      if (vnni_decode(M, W.type) && W.rows > 0) {
        const MatmulOut part{&W, Y, ldy};
        kern::avx512vnni::qmatmul_decode(X, M, ldx, &part, 1);
        return;
      }
      if (vnni_gemm(M, W.type) && W.rows > 0) {
        const MatmulOut part{&W, Y, ldy};
        kern::avx512vnni::qmatmul_gemm(X, M, ldx, &part, 1);
        return;
      }
      // (Without VNNI, Q8/Q4 use the 256-bit AVX2 integer decode kernels, and the fp32 GEMM of the dequantized
      // weights, in the AVX-512 unit.)
      kern::avx512::matmul(X, M, ldx, W, Y, ldy, avx512_bf16_dot(opt, W.type));
      return;
    }
    case Isa::kAvx2: kern::avx2::matmul(X, M, ldx, W, Y, ldy); return;
    case Isa::kScalar: break;
  }
  ref::matmul(X, M, ldx, W, Y, ldy);
}

// MatmulOut::round_bf16 after the product, for the paths whose kernels do not round as they store: round_act,
// which shares long rows (a batch's logits) among the threads.
static void round_outputs(const MatmulOut* parts, int n, int64_t M) {
  for (int i = 0; i < n; ++i) {
    const MatmulOut& p = parts[i];
    if (!p.round_bf16) continue;
    if (p.ldy == p.w->rows) round_act(p.y, M * p.ldy, Precision::kBF16);
    else
      for (int64_t m = 0; m < M; ++m) round_act(p.y + m * p.ldy, p.w->rows, Precision::kBF16);
  }
}

void matmul_parts_isa(Isa isa, const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n,
                      const MatmulOptions& opt) {
  check_part_count(n);
  // Decode, and the column-split GEMM: one schedule for all the parts (see matmul_parts).
  const bool same = same_type_and_k(parts, n);
  bool shared = M >= 1 && M <= kern::kColSplitMaxM && same;
  for (int i = 0; i < n && shared; ++i) shared = M <= kern::kDecodeMaxM || parts[i].w->cols > 0;
  const Isa best = clamp_isa(isa);
  if (best == Isa::kAvx512 && vnni_gemm(M, parts[0].w->type) && same) {
    kern::avx512vnni::qmatmul_gemm(X, M, ldx, parts, n);  // rounds as it stores
    return;
  }
  if (!shared || best == Isa::kScalar) {
    for (int i = 0; i < n; ++i) matmul_isa(isa, X, M, ldx, *parts[i].w, parts[i].y, parts[i].ldy, opt);
    round_outputs(parts, n, M);
    return;
  }
  const WeightType t = parts[0].w->type;
  if (best == Isa::kAvx512 && vnni_decode(M, t)) {
    kern::avx512vnni::qmatmul_decode(X, M, ldx, parts, n);  // rounds as it stores
    return;
  }
  if (best == Isa::kAvx512) {
    if (kern::avx512::matmul_parts(X, M, ldx, parts, n, avx512_bf16_dot(opt, t))) return;  // rounded as stored
  } else {
    kern::avx2::matmul_parts(X, M, ldx, parts, n);
  }
  round_outputs(parts, n, M);
}

void gemm_f32_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                  bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  switch (clamp_isa(isa)) {
    case Isa::kAvx512: kern::avx512::gemm_f32(M, N, K, A, lda, B, ldb, b_transposed, C, ldc, accumulate); return;
    case Isa::kAvx2: kern::avx2::gemm_f32(M, N, K, A, lda, B, ldb, b_transposed, C, ldc, accumulate); return;
    case Isa::kScalar: break;
  }
  ref::gemm_f32(M, N, K, A, lda, B, ldb, b_transposed, C, ldc, accumulate);
}

// The scalar fallback has no register tile and takes any width: 16, the AVX2 kernels'.
int64_t gemm_panel_width_isa(Isa isa) {
  switch (clamp_isa(isa)) {
    case Isa::kAvx512: return kern::avx512::gemm_panel_width();
    case Isa::kAvx2: return kern::avx2::gemm_panel_width();
    case Isa::kScalar: break;
  }
  return 16;
}

void gemm_f32_panels_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp,
                         int64_t ldp, float* C, int64_t ldc, bool accumulate) {
  switch (clamp_isa(isa)) {
    case Isa::kAvx512: kern::avx512::gemm_f32_panels(M, N, K, A, lda, Bp, ldp, C, ldc, accumulate); return;
    case Isa::kAvx2: kern::avx2::gemm_f32_panels(M, N, K, A, lda, Bp, ldp, C, ldc, accumulate); return;
    case Isa::kScalar: break;
  }
  ref::gemm_f32_panels(M, N, K, A, lda, Bp, gemm_panel_width_isa(isa), ldp, C, ldc, accumulate);
}

int64_t gemm_panel_width() { return gemm_panel_width_isa(active_isa()); }

void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate) {
  gemm_f32_panels_isa(active_isa(), M, N, K, A, lda, Bp, ldp, C, ldc, accumulate);
}

bool gemm_bf16_available() { return active_isa() == Isa::kAvx512 && cpu_features().avx512bf16; }

int64_t gemm_bf16_panel_width() { return kern::avx512::gemm_panel_width(); }

int64_t bf16_gemm_panel_words(int64_t rows, int64_t cols) {
  const int64_t w = kern::avx512::gemm_panel_width();
  return (rows + w - 1) / w * w * ((cols + 1) / 2);
}

void pack_bf16_gemm_panels(const WeightMatrix& W, uint32_t* out) {
  check(gemm_bf16_available(), "pack_bf16_gemm_panels: this CPU (or T5G_ISA) has no AVX512_BF16");
  check(W.type == WeightType::kBF16, "pack_bf16_gemm_panels: ", weight_type_name(W.type), " weights (bf16 only)");
  kern::avx512::pack_bf16_gemm_panels(W, out);
}

void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate) {
  check(gemm_bf16_available(), "gemm_bf16_panels: this CPU (or T5G_ISA) has no AVX512_BF16");
  kern::avx512::gemm_bf16_panels(M, N, Kp, A, lda, Bp, ldp, C, ldc, accumulate);
}

void prefetch_decode_shares(std::initializer_list<const WeightMatrix*> ws) {
  const int T = team_size();
  if (T <= 1) return;
  // What the decode kernels stream: a bf16 matrix's panels where it has them (the same rows in the same
  // order), else its data.
  const auto bytes = [](const WeightMatrix& w) {
    return w.gemm_panels ? bf16_gemm_panel_words(w.rows, w.cols) * 4 : weight_matrix_data_bytes(w);
  };
  int64_t total = 0;
  for (const WeightMatrix* w : ws) total += bytes(*w);
  // Member 1's share starts total / T bytes in (member 0, the master, streams its own): from there to the
  // end of the matrix it falls in, which the waiting members split (for T = 2 exactly member 1's share).
  int64_t at = total / T;
  for (const WeightMatrix* w : ws) {
    const int64_t b = bytes(*w);
    if (at < b) {
      const void* base = w->gemm_panels ? static_cast<const void*>(w->gemm_panels) : w->data;
      team_prefetch(static_cast<const char*>(base) + at, static_cast<size_t>(b - at));
      return;
    }
    at -= b;
  }
}

// Products whose rows are independent of M on every path here (the VNNI GEMM does the decode arithmetic;
// the vdpbf16ps decode kernels the GEMM's): row_stable needs no split into groups of kRowStableGroup rows.
static bool rows_independent_of_m(WeightType t, const MatmulOptions& opt) {
  if (t == WeightType::kBF16) return active_isa() == Isa::kAvx512 && avx512_bf16_dot(opt, t);
  return active_isa() == Isa::kAvx512 && vnni_gemm(kern::kDecodeMaxM + 1, t);
}

void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
            const MatmulOptions& opt) {
  if (opt.row_stable && M > kRowStableGroup && !rows_independent_of_m(W.type, opt)) {
    for (int64_t m0 = 0; m0 < M; m0 += kRowStableGroup)
      matmul_isa(active_isa(), X + m0 * ldx, std::min(kRowStableGroup, M - m0), ldx, W, Y + m0 * ldy, ldy, opt);
    return;
  }
  matmul_isa(active_isa(), X, M, ldx, W, Y, ldy, opt);
}

void matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n, const MatmulOptions& opt) {
  check_part_count(n);  // also on the row-stable path, which does not reach matmul_parts_isa
  bool split = false;  // row-stable rows in groups, unless every part's rows are independent of M anyway
  if (opt.row_stable && M > kRowStableGroup)
    for (int i = 0; i < n; ++i) split = split || !rows_independent_of_m(parts[i].w->type, opt);
  if (split) {
    for (int i = 0; i < n; ++i) matmul(X, M, ldx, *parts[i].w, parts[i].y, parts[i].ldy, opt);
    round_outputs(parts, n, M);
    return;
  }
  matmul_parts_isa(active_isa(), X, M, ldx, parts, n, opt);
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  gemm_f32_isa(active_isa(), M, N, K, A, lda, B, ldb, b_transposed, C, ldc, accumulate);
}

}  // namespace t5g
