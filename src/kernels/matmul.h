// Matrix products. The model's linear layers go through matmul(); attention's small dense
// products through gemm_f32(). Every product accumulates in fp32, as the reference does.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "kernels/cpu_features.h"

namespace t5g {

// How a weight matrix is stored. F32/BF16/F16 are checkpoint dtypes used in place from the mmap.
// Q8 and Q4 are grouped symmetric quantizations (made at load by quantize_matrix, or mapped from a
// checkpoint written by `t5g quantize`):
//   - each row is split into groups of kQuantGroup consecutive elements along `cols`; the row is
//     zero-padded to qcols = round_up(cols, kQuantGroup) elements, so any `cols` is allowed;
//   - every group has one fp16 scale d; Q8: int8 q in [-127, 127]; Q4: 4-bit q in [-8, 7]; value q * d;
//   - both are stored in tiles of kQuantTileRows = 16 consecutive rows (rows zero-padded to a multiple
//     of 16: q = 0, d = 0). Tile t, group g is a run of 64-byte chunks, chunk c holding 4 bytes of each
//     of the tile's 16 rows, row after row. Q8: 8 chunks, chunk c = elements 32g + 4c .. 32g + 4c + 3,
//     each byte q + 128 (unsigned). Q4: 4 chunks, byte j (0..3) of chunk c holds element 32g + 4c + j
//     + 8 in its low nibble and element 32g + 16 + 4c + j + 8 in its high nibble. The scales of tile t,
//     group g are 16 consecutive fp16 values, one per row (q8_byte_index, q4_byte_index,
//     quant_scale_index).
//     Why: one 512-bit vector is 4 values (Q4: 8) of 16 rows, so vpdpbusd (unsigned weight bytes times a
//     broadcast of 4 signed X bytes) accumulates 16 outputs with no horizontal sums and one exact int32
//     sum per group and row: a batch of X rows (decode at M = 8) costs one instruction per 64 weight bytes
//     and X row, where the row-major layout needed about five (a sign fix, a convert, a scale shuffle and
//     an FMA per pair of groups).
enum class WeightType { kF32, kBF16, kF16, kQ8, kQ4 };
inline constexpr int64_t kQuantGroup = 32;

const char* weight_type_name(WeightType t);
// Bytes of one element for the dense types; for Q8/Q4 use weight_matrix_bytes.
int64_t weight_type_bytes(WeightType t);
inline bool is_quantized(WeightType t) { return t == WeightType::kQ8 || t == WeightType::kQ4; }
inline int64_t quant_padded_cols(int64_t cols) { return (cols + kQuantGroup - 1) / kQuantGroup * kQuantGroup; }
inline constexpr int64_t kQuantTileRows = 16;
inline int64_t quant_padded_rows(int64_t rows) { return (rows + kQuantTileRows - 1) / kQuantTileRows * kQuantTileRows; }
// Byte offset of element (n, k), G = qcols / kQuantGroup groups a row: Q8 ...
inline int64_t q8_byte_index(int64_t n, int64_t k, int64_t G) {
  return (((n / kQuantTileRows) * G + k / kQuantGroup) * 8 + (k % kQuantGroup) / 4) * 64 + (n % kQuantTileRows) * 4 + k % 4;
}
// ... Q4 (the byte; the element is its low nibble when k % 32 < 16, else its high nibble) ...
inline int64_t q4_byte_index(int64_t n, int64_t k, int64_t G) {
  return (((n / kQuantTileRows) * G + k / kQuantGroup) * 4 + (k % 16) / 4) * 64 + (n % kQuantTileRows) * 4 + k % 4;
}
// ... and the index of the scale of row n, group g (both formats).
inline int64_t quant_scale_index(int64_t n, int64_t g, int64_t G) {
  return ((n / kQuantTileRows) * G + g) * kQuantTileRows + n % kQuantTileRows;
}

// A weight matrix in nn.Linear layout: `rows` = out_features, `cols` = in_features, row-major,
// rows packed densely (row stride = cols elements; qcols for the quantized types, see above).
struct WeightMatrix {
  WeightType type = WeightType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  const uint16_t* scales = nullptr;  // Q8/Q4 only: fp16 group scales (in tiles, see above)
  // Optional, BF16 only: the same matrix packed once (at load) by pack_bf16_gemm_panels. The vdpbf16ps
  // kernels then read these panels: the GEMM (M > 8 rows) instead of packing `data` into cache on every
  // call (14% of a 128-token encode), the decode kernels (M <= 8) instead of transposing `data` in
  // registers; the results are the same bits. weight_row_f32 reads a row from them too (embedding lookups
  // of a packed LM head). Every other kernel reads `data`, which stays valid.
  const uint32_t* gemm_panels = nullptr;
};

// Bytes a matrix occupies (data + scales): what one pass over it reads from memory.
int64_t weight_matrix_bytes(const WeightMatrix& w);
// Bytes of its `data` alone (Q8 / Q4: without the scales).
int64_t weight_matrix_data_bytes(const WeightMatrix& w);

// Quantizes a dense matrix `src` (F32/BF16/F16) to Q8 or Q4 into caller-provided buffers of
// quant_data_bytes(type, rows, cols) and quant_scale_count(rows, cols) fp16 elements (the
// padding rows included). Deterministic (the result does not depend on the thread count); multithreaded.
int64_t quant_data_bytes(WeightType type, int64_t rows, int64_t cols);
int64_t quant_scale_count(int64_t rows, int64_t cols);  // the same for both formats
void quantize_matrix(const WeightMatrix& src, WeightType type, void* data, uint16_t* scales);
// Q8 / Q4 written row-major (the layout of checkpoints from t5g quantize before the tiles: scales [rows,
// groups]; Q8 int8 [rows, qcols]; Q4 [rows, qcols / 2] bytes, byte j of a group's 16 holding element j
// + 8 in its low nibble and element j + 16 + 8 in its high one) into the tiles (buffers as quantize_matrix's).
void quant_rows_to_tiles(WeightType type, const void* q, const uint16_t* d, int64_t rows, int64_t cols, void* data,
                         uint16_t* scales);
// Row r of any matrix as fp32 (cols values): embedding lookups of a possibly quantized table.
void weight_row_f32(const WeightMatrix& w, int64_t r, float* out);

struct MatmulOptions {
  // The caller guarantees X holds bf16-representable values (bf16 compute mode), so kernels may
  // feed X to bf16 dot-product instructions without changing its values.
  bool x_is_bf16 = false;
  // Each row's result must not depend on how many rows are multiplied together (a decoder batch
  // row must equal the same request run alone): rows go through the decode path in groups of at
  // most kRowStableGroup, whose per-row summation order is independent of M (Q8/Q4 on AVX512_VNNI:
  // in one product, whose rows never depend on M; bf16 with x_is_bf16 on AVX512_BF16 likewise).
  bool row_stable = false;
};
inline constexpr int64_t kRowStableGroup = 8;

// Y[m, n] = sum_k X[m, k] * W[n, k] for m < M, n < W.rows, k < W.cols (Y = X·Wᵀ).
// X: fp32, row stride ldx >= W.cols. Y: fp32, row stride ldy >= W.rows. Multithreaded (OpenMP).
// W is only read (it may be an mmap'd checkpoint). Results are bit-identical for any thread count:
// each output's K reduction order depends only on K, M (M <= 8 streams W; larger M packs it into
// cache blocks) and the ISA, never on the thread count. Kernels: src/kernels/matmul_impl.inl.
// Q8/Q4 weights, decode (M <= 8) and, on AVX-512 with AVX512_VNNI, every M: each row of X is quantized to
// int8 per group of kQuantGroup (d = max|x|/127, round to nearest), and the group dot products are exact
// integer sums, each output y = fma(float(sum_g), dw_g·dx_g, y) over the groups in order (the same bits on
// AVX2 and AVX512_VNNI, and in the VNNI GEMM): |error| <= Σ_g (d_g/2)·Σ_{k in g}|w_k| plus fp32 rounding,
// about 0.5% of rms(Y) for Gaussian data, as much again as int8 weights' own (kernels:
// src/kernels/matmul_quant.inl, and matmul_vnni.cc on AVX512_VNNI). A row's result does not depend on the
// other rows (of its M <= 8 group; of any M on VNNI, where row_stable needs no split). Without VNNI, M > 8:
// the weights are dequantized (q·d, as weight_row_f32) into the fp32 GEMM, so the result is X times the
// dequantized weights up to fp32 reassociation. The VNNI GEMM runs 1.3-1.4x as fast as that product of the
// dequantized weights rounded to bf16 on vdpbf16ps, which it replaced (an int8 128-token encode 53 -> 37.5
// ms; BENCHMARKS.md, twenty-second session).
// bf16 weights with x_is_bf16 on AVX512_BF16 (matmul_avx512.cc) use vdpbf16ps: each output is one fp32
// chain over the (k, k+1) pairs in order, each pair adding its odd product and then its even one (the
// products of bf16 values are exact; bf16 noise against the fp32 order of the other paths, see
// tests/model): the same bits at any M (decode kernels and GEMM alike), from `data` or gemm_panels, on
// any thread count, so row_stable needs no split there.
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
            const MatmulOptions& opt = {});

// One product of matmul_parts: Y = X·Wᵀ into y (row stride ldy); with round_bf16, each output is then
// rounded to bf16 (round_bf16: nearest even, NaN kept). The AVX512_VNNI decode kernels (int8 / q4, M <= 8)
// round in registers as they store: a pass of its own over an LM head's logits took 0.36-0.51 ms of a
// batch-8 step (8 MB written, read and written again); so do the bf16 decode kernels on AVX512_BF16 (16
// outputs a vector: the LM head 2-12% faster in-process at batch 8, 4-8% at batch 1). The other paths
// round after the product.
struct MatmulOut {
  const WeightMatrix* w;
  float* y;
  int64_t ldy;
  bool round_bf16 = false;
};
inline constexpr int kMaxMatmulParts = 4;

// Several products of the same X (a layer's q, k and v projections; gate and up), each exactly as
// matmul(X, M, ldx, *parts[i].w, parts[i].y, parts[i].ldy, opt) computes it, bit for bit. When the
// matrices share a weight type and K and M <= 8 (decode), they run as one: X is prepared (quantized)
// once and the rows of all of them are handed out to the threads together, so a matrix too small to
// split alone is shared too and the threads meet once. Likewise from 9 to 256 rows (an encoder or a
// prefill of a few hundred tokens; K > 0): their column chunks go out as one list. n <= kMaxMatmulParts.
void matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n, const MatmulOptions& opt = {});

// Inside a decode step's team (kernels/team.h), asks its waiting members to prefetch the start of their
// shares of the next decode product, of the matrices ws laid end to end as matmul_parts schedules them
// (row_shares.h: member t of T streams from t/T of their bytes on), so that the memory bus streams it
// during the master's serial work before the product (an attention row, norms, GELU). No effect outside
// a team.
void prefetch_decode_shares(std::initializer_list<const WeightMatrix*> ws);

// Dense fp32 C[M,N] (+)= A[M,K] · op(B), op(B) = Bᵀ (B is [N,K], ldb) when b_transposed, else B ([K,N], ldb).
// accumulate=false overwrites C. Single-threaded: callers parallelise over independent blocks.
// Any sizes and strides; uses per-thread scratch (a transposed / copied B micro-panel), no allocation
// after the first calls on a thread.
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);

// gemm_f32 with B pre-packed into column panels of w = gemm_panel_width() columns (the micro-kernel's
// register tile width; it depends on the ISA): element (k, n) of B at Bp[(n / w) * ldp + k * w + n % w],
// ldp >= K * w. A panel's columns past N may be read and must be finite (zero them). Attention packs
// each kv head's Kᵀ and V this way once per call: the products then stream B in order, where rows of K
// or V lie a token's whole width apart (4.6 KB in the vision tower) and land in a few L1 sets.
int64_t gemm_panel_width();
void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate);

// bf16 products on AVX512_BF16 (vdpbf16ps), for attention in a bf16 model, whose Q, K, V and
// probabilities are bf16 values: available only where gemm_bf16_available() (else callers use
// gemm_f32_panels). C[M,N] (+)= A·B over K = 2·Kp, fp32 accumulation: A row-major bf16 (lda elements,
// even, Kp pairs per row: an odd K's last pair ends in a zero), B in pair panels of
// gemm_bf16_panel_width() = w columns: the dword of pair kk of column n, (B[2kk][n] | B[2kk+1][n] << 16),
// at Bp[(n / w) * ldp + kk * w + n % w], ldp >= Kp * w; panel columns past N are read and must be finite.
// Each output is one fp32 chain over the pairs in order (each step adds the pair's two products), so the
// result does not depend on M, N or on how the caller splits the rows. Single-threaded.
bool gemm_bf16_available();
int64_t gemm_bf16_panel_width();
// A bf16 matrix in the vdpbf16ps GEMM's weight layout, for WeightMatrix::gemm_panels: panel j holds rows
// (output columns) 32j .. 32j + 31 of W over all of K, pair after pair: the dword (W[n][2kk] |
// W[n][2kk + 1] << 16) at out[j·32·Kp + kk·32 + n % 32], Kp = ceil(cols / 2) (an odd K's last pair ends in
// a zero, rows past `rows` are zero). bf16_gemm_panel_words: the size of `out` in dwords.
// pack_bf16_gemm_panels requires gemm_bf16_available() and W.type == kBF16; multithreaded.
int64_t bf16_gemm_panel_words(int64_t rows, int64_t cols);
void pack_bf16_gemm_panels(const WeightMatrix& W, uint32_t* out);
void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate);

// The same products computed by the kernels of a given ISA (lowered to active_isa() if the CPU or
// T5G_ISA does not allow it): lets tests and benchmarks exercise every code path on one machine.
// With Isa::kAvx512, opt.x_is_bf16 and bf16 weights, the AVX512_BF16 (vdpbf16ps) kernels are used
// when the CPU has them.
void matmul_isa(Isa isa, const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
                const MatmulOptions& opt = {});
void matmul_parts_isa(Isa isa, const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n,
                      const MatmulOptions& opt = {});
void gemm_f32_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, bool b_transposed, float* C, int64_t ldc, bool accumulate);
int64_t gemm_panel_width_isa(Isa isa);
void gemm_f32_panels_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp,
                         int64_t ldp, float* C, int64_t ldc, bool accumulate);

namespace ref {
// Plain loops: the reference the optimised kernels are tested against.
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy);
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);
// Panels of w columns (any w >= 1), as gemm_f32_panels.
void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t w,
                     int64_t ldp, float* C, int64_t ldc, bool accumulate);
// gemm_bf16_panels in plain loops (any panel width w): per output the pairs in order, each adding its
// two products in fp32 (vdpbf16ps may differ in the last bit: it rounds the pair's products in another order).
void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp, int64_t w,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate);
}  // namespace ref

}  // namespace t5g
