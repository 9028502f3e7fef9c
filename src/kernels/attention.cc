#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/ops_internal.h"
#include "kernels/team.h"
#include "util/error.h"

namespace t5g {

namespace {

// finish_scores_row then exp_sum_row (ISAs without a fused kernel).
template <auto Finish, auto ExpSum>
float finish_then_exp_sum(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p) {
  return ExpSum(s, n, Finish(s, n, lo, hi, scale, cap, p));
}

// The per-row kernels of the active ISA (see ops_internal.h).
struct RowKernels {
  decltype(&kern::scalar::finish_scores_row) finish;
  decltype(&kern::scalar::exp_sum_row) exp_sum;
  decltype(&kern::avx512::finish_exp_sum_row) finish_exp_sum;
  decltype(&kern::scalar::scale_round_row) scale_round;
  decltype(&kern::scalar::round_act) round;
  decltype(&kern::scalar::dot_rows_heads) dot_heads;
  decltype(&kern::scalar::axpy_rows_heads) axpy_heads;
};

const RowKernels& row_kernels() {
  static const RowKernels k = [] {
    const Isa isa = active_isa();
    if (isa >= Isa::kAvx2) {
      RowKernels r{kern::avx2::finish_scores_row,
                   kern::avx2::exp_sum_row,
                   finish_then_exp_sum<kern::avx2::finish_scores_row, kern::avx2::exp_sum_row>,
                   kern::avx2::scale_round_row,
                   kern::avx2::round_act,
                   kern::avx2::dot_rows_heads,
                   kern::avx2::axpy_rows_heads};
      if (isa >= Isa::kAvx512) {  // bitwise the AVX2 results, twice the lanes
        r.finish = kern::avx512::finish_scores_row;
        r.exp_sum = kern::avx512::exp_sum_row;
        r.finish_exp_sum = kern::avx512::finish_exp_sum_row;
        r.scale_round = kern::avx512::scale_round_row;
        r.dot_heads = kern::avx512::dot_rows_heads;
        r.axpy_heads = kern::avx512::axpy_rows_heads;
      }
      return r;
    }
    return RowKernels{kern::scalar::finish_scores_row,
                      kern::scalar::exp_sum_row,
                      finish_then_exp_sum<kern::scalar::finish_scores_row, kern::scalar::exp_sum_row>,
                      kern::scalar::scale_round_row,
                      kern::scalar::round_act,
                      kern::scalar::dot_rows_heads,
                      kern::scalar::axpy_rows_heads};
  }();
  return k;
}

// Query rows per block: more rows reuse each K/V panel more, but the block's score rows
// ([rows, keys] fp32) should stay within about 256 KiB so they are still cached when the softmax
// and the P·V product read them back. Multiples of 6 (the AVX2 GEMM's register tile height).
// Depends only on the key span, never on the thread count.
int64_t query_block(int64_t span) {
  if (span <= 1024) return 48;
  if (span <= 2048) return 30;
  return 18;
}

// Row stride of the score buffer: a multiple of 16 floats that is not a multiple of 256 (rows that
// are 1 KiB-multiples apart would share L1 sets).
int64_t score_stride(int64_t n) {
  int64_t ld = (n + 15) / 16 * 16;
  if (ld % 256 == 0) ld += 16;
  return ld;
}

// Row stride of the bf16 probabilities (P·V's A operand, whose kernels read a pair from each of up to 24 rows
// at once): whole lines, and rows that are not 512 B-multiples apart, so that they fall in different L1 sets.
// At 4096 keys (8 KiB rows, all in one set of the 12-way L1) the vision tower's P·V ran 11% slower.
int64_t prob_stride(int64_t n) {
  int64_t ld = (n + 31) / 32 * 32;
  if (ld % 256 == 0) ld += 32;
  return ld;
}

// V of the block's keys for P·V: fp32 column panels (gemm_f32_panels), or bf16 pair panels
// (gemm_bf16_panels, a bf16 model on AVX512_BF16), then the rounded probabilities go to pbuf as bf16.
struct VOperand {
  const float* vp = nullptr;
  int64_t ldp = 0;
  const uint32_t* vp16 = nullptr;
  int64_t ldp16 = 0;
  std::vector<uint16_t>* pbuf = nullptr;
};

// Rows [0, nq) of n bf16-valued floats (stride ld) as bf16 into dst (stride ldd = n rounded up to even),
// a zero after an odd n (the last pair's second element). The values are bf16 already: the high halves.
void rows_to_bf16(const float* x, int64_t nq, int64_t n, int64_t ld, uint16_t* dst, int64_t ldd) {
  for (int64_t r = 0; r < nq; ++r) {
    const float* xr = x + r * ld;
    uint16_t* d = dst + r * ldd;
    for (int64_t c = 0; c < n; ++c) {
      uint32_t u;
      std::memcpy(&u, xr + c, 4);
      d[c] = static_cast<uint16_t>(u >> 16);
    }
    if (n % 2) d[n] = 0;
  }
}

// The exact softmax of one query block's score rows, then P·V and the block's output rows. scores:
// [nq, ns] raw Q·Kᵀ at stride lds against keys k_lo .. k_lo + ns - 1 (finished here: scale, softcap,
// mask); vp: V of those keys for the block's kv head in column panels (gemm_f32_panels, panel stride
// ldp; see PackedKv); out: the block's first output row (stride ldo).
// Per row the maximum, exp and sum over the whole row, exactly as the reference's
// softmax(dtype=float32). In reduced precision the normalised probabilities are rounded before P·V
// (softmax(...).to(dtype)); in fp32 the unnormalised exps go through P·V and the output is scaled by
// 1/sum. acc: [nq, hd] and inv: [nq] scratch.
void softmax_pv_block(const RowKernels& rk, float* scores, int64_t lds, int64_t nq, int64_t ns, int64_t i0,
                      int64_t k_lo, Band band, const AttnParams& p, const VOperand& vo, float* acc,
                      float* inv, float* out, int64_t ldo) {
  const int64_t hd = p.head_dim;
  const bool exact_probs = p.precision != Precision::kF32;
  const float* cap = p.softcap ? &*p.softcap : nullptr;
  // bf16 pair panels of V (a bf16 model on AVX512_BF16): each row's rounded probabilities go straight into
  // the bf16 operand of P·V (pbuf: kp pairs a row, a zero after an odd ns, at stride ldb).
  check(!vo.vp16 || p.precision == Precision::kBF16, "attention: bf16 V panels need bf16 precision");
  const int64_t kp = (ns + 1) / 2, ldb = prob_stride(ns);
  if (vo.vp16 && vo.pbuf->size() < static_cast<size_t>(nq * ldb)) vo.pbuf->resize(static_cast<size_t>(nq * ldb));
  for (int64_t r = 0; r < nq; ++r) {
    float* s = scores + r * lds;
    const int64_t i = i0 + r;  // visible keys: [i - behind, i + ahead] (finish clamps to the row)
    const float sum =
        rk.finish_exp_sum(s, ns, i - band.behind - k_lo, i + band.ahead + 1 - k_lo, p.scale, cap, p.precision);
    const float f = sum > 0.f ? 1.f / sum : 0.f;  // fully masked row -> zeros
    if (vo.vp16) kern::avx512::scale_round_row_bf16(s, ns, f, vo.pbuf->data() + r * ldb);
    else if (exact_probs) rk.scale_round(s, ns, f, p.precision);
    inv[r] = exact_probs ? 1.f : f;
  }
  if (vo.vp16) {  // normalised already (inv = 1): the product goes straight to the output rows
    gemm_bf16_panels(nq, hd, kp, vo.pbuf->data(), ldb, vo.vp16, vo.ldp16, out, ldo, false);
    for (int64_t r = 0; r < nq; ++r) rk.round(out + r * ldo, hd, p.precision);
    return;
  }
  gemm_f32_panels(nq, hd, ns, scores, lds, vo.vp, vo.ldp, acc, hd, false);
  for (int64_t r = 0; r < nq; ++r) {
    float* o = out + r * ldo;
    for (int64_t d = 0; d < hd; ++d) o[d] = acc[r * hd + d] * inv[r];
    rk.round(o, hd, p.precision);
  }
}

}  // namespace

// A buffer whose every element the packing writes: no zero fill first (the vision tower's packed K and V
// are 19 MB a layer, ~0.5 GB of memset an image).
template <class T>
struct PackBuffer {
  std::unique_ptr<T[]> p;
  void resize(size_t n) { p = std::make_unique_for_overwrite<T[]>(n); }
  T* data() { return p.get(); }
  const T* data() const { return p.get(); }
};

// Kᵀ and V of every kv head, made once per call in the column panels of gemm_f32_panels (w columns
// each), so that Q·Kᵀ and P·V stream their B operand in order. Kᵀ: panel j holds keys [jw, jw + w) as
// [hd][w]; V: panel c holds head-dim columns [cw, cw + w) of every key as [Lw][w]; zero past L and hd.
// Read in place instead, K needs a transpose per product (for every query block again) and V rows lie
// a token's whole width apart: 4.6 KB in the vision tower, where they share 8 of the L1 cache's 64
// sets (P·V ran at 43-51 GFLOP/s on one core, against 63-77 from panels). Memory: one more copy of K
// and V (2 KB per key for the 270m's single kv head of 256).
struct PackedKv {
  int64_t w = 0, hd = 0;                     // panel width, head dim
  int64_t nkp = 0, Lw = 0, nvp = 0;          // key panels; keys padded to them; V panels
  int64_t kt_head = 0, v_head = 0;           // floats per kv head
  PackBuffer<float> kt, vp;  // (every element written by pack_kv)
  // B operands (gemm_f32_panels) for the keys from k0 (a multiple of w) of kv head h.
  const float* kt_at(int64_t h, int64_t k0) const { return kt.data() + h * kt_head + k0 * hd; }
  int64_t kt_ld() const { return hd * w; }
  const float* v_at(int64_t h, int64_t k0) const { return vp.data() + h * v_head + k0 * w; }
  int64_t v_ld() const { return Lw * w; }
};

PackedKv pack_kv(const float* k, const float* v, int64_t ldkv, int64_t L, const AttnParams& p) {
  PackedKv pk;
  const int64_t hd = p.head_dim, w = gemm_panel_width();
  pk.w = w;
  pk.hd = hd;
  pk.nkp = (L + w - 1) / w;
  pk.Lw = pk.nkp * w;
  pk.nvp = (hd + w - 1) / w;
  pk.kt_head = pk.nkp * hd * w;
  pk.v_head = pk.nvp * pk.Lw * w;
  pk.kt.resize(static_cast<size_t>(p.num_kv_heads * pk.kt_head));
  pk.vp.resize(static_cast<size_t>(p.num_kv_heads * pk.v_head));
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < pk.nkp; ++j) {
    for (int64_t kvh = 0; kvh < p.num_kv_heads; ++kvh) {
      float* kd = pk.kt.data() + kvh * pk.kt_head + j * hd * w;
      float* vd = pk.vp.data() + kvh * pk.v_head + j * w * w;
      for (int64_t t = 0; t < w; ++t) {
        const int64_t key = j * w + t;
        const float* kr = key < L ? k + key * ldkv + kvh * hd : nullptr;
        const float* vr = key < L ? v + key * ldkv + kvh * hd : nullptr;
        for (int64_t d = 0; d < hd; ++d) kd[d * w + t] = kr ? kr[d] : 0.f;
        for (int64_t c0 = 0; c0 < hd; c0 += w) {
          float* dst = vd + (c0 / w) * pk.Lw * w + t * w;
          const int64_t nc = std::min(w, hd - c0);
          if (vr) std::copy(vr + c0, vr + c0 + nc, dst);
          else std::fill(dst, dst + nc, 0.f);
          std::fill(dst + nc, dst + w, 0.f);
        }
      }
    }
  }
  return pk;
}

// The same for a bf16 model on AVX512_BF16 (gemm_bf16_panels): Kᵀ and V in bf16 pair panels, so that
// Q·Kᵀ and P·V run on vdpbf16ps (twice the fp32 FMA rate) with the reference's bf16 operands, fp32
// accumulation. Kᵀ: panel j holds keys [jw, jw + w) as [hp][w] dwords, pair dd = head-dim elements
// (2dd, 2dd + 1); V: panel c holds head-dim columns [cw, cw + w) as [Lw / 2][w] dwords, pair kk = keys
// (2kk, 2kk + 1). Zero past L and hd. Half the memory of PackedKv. The keys and values are bf16 values
// (the projections' rounded outputs): their high halves are exact.
struct PackedKv16 {
  int64_t w = 0, hd = 0, hp = 0;             // panel width, head dim, head-dim pairs
  int64_t nkp = 0, Lw = 0, nvp = 0;          // key panels; keys padded to them; V panels
  int64_t kt_head = 0, v_head = 0;           // dwords per kv head
  PackBuffer<uint32_t> kt, vp;  // (every element written by pack_kv16)
  const uint32_t* kt_at(int64_t h, int64_t k0) const { return kt.data() + h * kt_head + (k0 / w) * hp * w; }
  int64_t kt_ld() const { return hp * w; }
  const uint32_t* v_at(int64_t h, int64_t k0) const { return vp.data() + h * v_head + (k0 / 2) * w; }
  int64_t v_ld() const { return Lw / 2 * w; }
};

inline uint32_t bf16_pair(float lo, float hi) {
  uint32_t a, b;
  std::memcpy(&a, &lo, 4);
  std::memcpy(&b, &hi, 4);
  return (a >> 16) | (b & 0xffff0000u);
}

PackedKv16 pack_kv16(const float* k, const float* v, int64_t ldkv, int64_t L, const AttnParams& p) {
  PackedKv16 pk;
  const int64_t hd = p.head_dim, w = gemm_bf16_panel_width();
  pk.w = w;
  pk.hd = hd;
  pk.hp = (hd + 1) / 2;
  pk.nkp = (L + w - 1) / w;
  pk.Lw = pk.nkp * w;  // w is even
  pk.nvp = (hd + w - 1) / w;
  pk.kt_head = pk.nkp * pk.hp * w;
  pk.v_head = pk.nvp * (pk.Lw / 2) * w;
  pk.kt.resize(static_cast<size_t>(p.num_kv_heads * pk.kt_head));
  pk.vp.resize(static_cast<size_t>(p.num_kv_heads * pk.v_head));
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < pk.nkp; ++j) {
    for (int64_t kvh = 0; kvh < p.num_kv_heads; ++kvh) {
      uint32_t* kd = pk.kt.data() + kvh * pk.kt_head + j * pk.hp * w;
      for (int64_t t = 0; t < w; ++t) {
        const int64_t key = j * w + t;
        const float* kr = key < L ? k + key * ldkv + kvh * hd : nullptr;
        for (int64_t dd = 0; dd < pk.hp; ++dd)
          kd[dd * w + t] = kr ? bf16_pair(kr[2 * dd], 2 * dd + 1 < hd ? kr[2 * dd + 1] : 0.f) : 0u;
      }
      for (int64_t kk = j * w / 2; kk < (j + 1) * w / 2; ++kk) {
        const int64_t k0 = 2 * kk, k1 = 2 * kk + 1;
        const float* v0 = k0 < L ? v + k0 * ldkv + kvh * hd : nullptr;
        const float* v1 = k1 < L ? v + k1 * ldkv + kvh * hd : nullptr;
        for (int64_t c0 = 0; c0 < hd; c0 += w) {
          uint32_t* dst = pk.vp.data() + kvh * pk.v_head + (c0 / w) * pk.v_ld() + kk * w;
          for (int64_t t = 0; t < w; ++t) {
            const int64_t c = c0 + t;
            dst[t] = c < hd ? bf16_pair(v0 ? v0[c] : 0.f, v1 ? v1[c] : 0.f) : 0u;
          }
        }
      }
    }
  }
  return pk;
}

// K and V of one attention call, packed for the products of its precision: bf16 pair panels for a bf16
// model on AVX512_BF16 (vdpbf16ps), fp32 column panels otherwise (f is then set, b is not).
struct KvOperands {
  bool bf16 = false;
  PackedKv f;
  PackedKv16 b;
  int64_t w() const { return bf16 ? b.w : f.w; }  // panel width: key spans start on a multiple of it
  // Q·Kᵀ of a block of nq query rows (qh, stride ldq) against the keys [k0, k0 + n) (k0 a multiple of w())
  // of kv head kvh, into scores (stride lds); in bf16 the block's Q rows are converted into qbuf first.
  void scores(int64_t nq, int64_t n, const float* qh, int64_t ldq, int64_t kvh, int64_t k0, float* out, int64_t lds,
              std::vector<uint16_t>& qbuf) const {
    if (!bf16) {
      gemm_f32_panels(nq, n, f.hd, qh, ldq, f.kt_at(kvh, k0), f.kt_ld(), out, lds, false);
      return;
    }
    const int64_t ldb = 2 * b.hp;
    if (qbuf.size() < static_cast<size_t>(nq * ldb)) qbuf.resize(static_cast<size_t>(nq * ldb));
    rows_to_bf16(qh, nq, b.hd, ldq, qbuf.data(), ldb);
    gemm_bf16_panels(nq, n, b.hp, qbuf.data(), ldb, b.kt_at(kvh, k0), b.kt_ld(), out, lds, false);
  }
  // V of kv head kvh from key k0 for softmax_pv_block (pbuf: its bf16 probabilities).
  VOperand values(int64_t kvh, int64_t k0, std::vector<uint16_t>& pbuf) const {
    if (bf16) return VOperand{.vp16 = b.v_at(kvh, k0), .ldp16 = b.v_ld(), .pbuf = &pbuf};
    return VOperand{.vp = f.v_at(kvh, k0), .ldp = f.v_ld()};
  }
};

KvOperands pack_operands(const float* k, const float* v, int64_t ldkv, int64_t L, const AttnParams& p) {
  KvOperands o;
  o.bf16 = p.precision == Precision::kBF16 && gemm_bf16_available();
  if (o.bf16) o.b = pack_kv16(k, v, ldkv, L, p);
  else o.f = pack_kv(k, v, ldkv, L, p);
  return o;
}

// Long key spans (full-attention layers of long inputs): blocks of kTileRows query rows, Q·Kᵀ by key
// tiles of kTileKeys (from the packed Kᵀ), so each K/V element fetched serves 96 query rows (the
// short-span path below re-streams Kᵀ for every block of 18-48 rows, which made it memory-bound past a
// few thousand keys).
//   fp32: online softmax (flash-attention style); nothing larger than a [96, 512] score tile exists.
//     Per row, running max m and sum l; a tile raising m to m' rescales l and the output accumulator
//     by exp(m - m'); out = acc / l. Differs from the exact softmax only by the fp32 rounding of the
//     rescales (~1e-7 relative).
//   reduced precision: the reference rounds the normalised probabilities before P·V, which needs each
//     row's final max and sum first; the block keeps its finished score rows ([96, span] per thread,
//     linear in the length: 50 MB at 128K keys) and rounds them exactly as the short-span path does.
// Key spans above this take the tiled path: 1024 for text heads (head_dim >= 128: measured 75 vs 60
// GFLOP/s per core at 2048 keys, bench_kernels BM_Attention), 4096 for narrow heads (the vision tower's
// 72: its 4096-key layers ran faster through the short-span path, 57 vs 50 GFLOP/s; with both paths
// on packed panels they measure equal).
inline int64_t tiled_min_span(int64_t head_dim) { return head_dim >= 128 ? 1024 : 4096; }
constexpr int64_t kTileKeys = 512;
constexpr int64_t kTileRows = 96;  // a multiple of 6 (the AVX2 GEMM tile height) and of 12 (AVX-512)

static void attention_tiled(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, float* out,
                     int64_t ldo, int64_t L, Band band, const AttnParams& p) {
  const RowKernels& rk = row_kernels();
  const int64_t hd = p.head_dim;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const bool exact_probs = p.precision != Precision::kF32;
  const float* cap = p.softcap ? &*p.softcap : nullptr;
  const int64_t n_qblocks = (L + kTileRows - 1) / kTileRows;
  const int64_t lds = score_stride(kTileKeys);
  // (bf16 packs run the reduced-precision branch below; the fp32 online branch uses ko.f.)
  const KvOperands ko = pack_operands(k, v, ldkv, L, p);
  const PackedKv& pk = ko.f;
  const int64_t pw = ko.w();
#pragma omp parallel
  {
    std::vector<uint16_t> qbuf, pbuf;  // bf16 Q rows and probabilities (ko.bf16)
    std::vector<float> scores(static_cast<size_t>(kTileRows * lds));
    std::vector<float> acc(static_cast<size_t>(kTileRows * hd));
    std::vector<float> mx(static_cast<size_t>(kTileRows)), sum(static_cast<size_t>(kTileRows));
    std::vector<float> wide;  // reduced precision: the block's score rows over the whole span
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < p.num_heads; ++h) {
      for (int64_t qb = 0; qb < n_qblocks; ++qb) {
        const int64_t i0 = qb * kTileRows, i1 = std::min(L, i0 + kTileRows), nq = i1 - i0;
        const int64_t kvh = h / group;
        const float* qh = q + i0 * ldq + h * hd;
        // From a panel boundary: keys before the band get -inf scores (finish masks them).
        const int64_t k_lo = std::max<int64_t>(0, i0 - band.behind) / pw * pw;
        const int64_t k_hi = std::min<int64_t>(L, i1 - 1 + band.ahead + 1);
        // Scores of the block's rows against keys [t0, t0 + nt), finished (scale, softcap, mask) per row;
        // each row's tile maximum in tmax.
        auto tile_scores = [&](int64_t t0, int64_t nt, float* tmax) {
          gemm_f32_panels(nq, nt, hd, qh, ldq, pk.kt_at(kvh, t0), pk.kt_ld(), scores.data(), lds, false);
          for (int64_t r = 0; r < nq; ++r) {
            const int64_t i = i0 + r;  // visible keys: [i - behind, i + ahead] (finish clamps to the tile)
            tmax[r] = rk.finish(scores.data() + r * lds, nt, i - band.behind - t0, i + band.ahead + 1 - t0, p.scale, cap,
                                p.precision);
          }
        };
        float tmax[kTileRows];
        std::fill(mx.begin(), mx.end(), -INFINITY);
        std::fill(sum.begin(), sum.end(), 0.f);
        std::fill(acc.begin(), acc.end(), 0.f);
        if (exact_probs) {
          // All of the block's scores ([nq, span], linear in the length), then the exact softmax.
          const int64_t ns = k_hi - k_lo, ldw = score_stride(ns);
          if (wide.size() < static_cast<size_t>(nq * ldw)) wide.resize(static_cast<size_t>(nq * ldw));
          for (int64_t t0 = k_lo; t0 < k_hi; t0 += kTileKeys)
            ko.scores(nq, std::min(kTileKeys, k_hi - t0), qh, ldq, kvh, t0, wide.data() + (t0 - k_lo), ldw, qbuf);
          softmax_pv_block(rk, wide.data(), ldw, nq, ns, i0, k_lo, band, p, ko.values(kvh, k_lo, pbuf), acc.data(),
                           /*inv=*/sum.data(), out + i0 * ldo + h * hd, ldo);
        } else {
          for (int64_t t0 = k_lo; t0 < k_hi; t0 += kTileKeys) {
            const int64_t nt = std::min(kTileKeys, k_hi - t0);
            tile_scores(t0, nt, tmax);
            for (int64_t r = 0; r < nq; ++r) {
              float* s = scores.data() + r * lds;
              const float m1 = std::max(mx[r], tmax[r]);
              if (m1 == -INFINITY) {  // nothing visible yet: this tile's probabilities are all zero
                std::fill(s, s + nt, 0.f);
                continue;
              }
              if (mx[r] != -INFINITY && mx[r] != m1) {
                const float a = std::exp(mx[r] - m1);
                sum[r] *= a;
                for (int64_t d = 0; d < hd; ++d) acc[r * hd + d] *= a;
              }
              sum[r] += rk.exp_sum(s, nt, m1);
              mx[r] = m1;
            }
            gemm_f32_panels(nq, hd, nt, scores.data(), lds, pk.v_at(kvh, t0), pk.v_ld(), acc.data(), hd, true);
          }
          for (int64_t r = 0; r < nq; ++r) {
            float* o = out + (i0 + r) * ldo + h * hd;
            const float f = sum[r] > 0.f ? 1.f / sum[r] : 0.f;
            for (int64_t d = 0; d < hd; ++d) o[d] = acc[r * hd + d] * f;
            rk.round(o, hd, p.precision);
          }
        }
      }
    }
  }
}

// Short key spans: for a block of query rows, all scores against the block's key span are formed at
// once (the span is at most the band plus the block, so memory stays [rows, L]), then the exact
// softmax (softmax_pv_block). Each score is computed once.
void attention_banded(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, float* out,
                      int64_t ldo, int64_t L, Band band, const AttnParams& p) {
  if (std::min(L, band.behind + band.ahead + 1) > tiled_min_span(p.head_dim)) {
    attention_tiled(q, ldq, k, v, ldkv, out, ldo, L, band, p);
    return;
  }
  const RowKernels& rk = row_kernels();
  const int64_t hd = p.head_dim;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const int64_t qb_rows = query_block(std::min(L, band.behind + band.ahead + 1));
  const int64_t n_qblocks = (L + qb_rows - 1) / qb_rows;
  const KvOperands ko = pack_operands(k, v, ldkv, L, p);
  const int64_t pw = ko.w();
#pragma omp parallel
  {
    std::vector<uint16_t> qbuf, pbuf;
    std::vector<float> scores;
    std::vector<float> acc(static_cast<size_t>(qb_rows * hd));
    std::vector<float> inv(static_cast<size_t>(qb_rows));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < p.num_heads; ++h) {
      for (int64_t qb = 0; qb < n_qblocks; ++qb) {
        const int64_t i0 = qb * qb_rows, i1 = std::min(L, i0 + qb_rows), nq = i1 - i0;
        const int64_t kvh = h / group;
        const float* qh = q + i0 * ldq + h * hd;
        // The block's key span, from a panel boundary: the keys before the band's first one get -inf
        // scores (finish masks them), which leaves the softmax and P·V exactly as without them.
        const int64_t k_lo = std::max<int64_t>(0, i0 - band.behind) / pw * pw;
        const int64_t k_hi = std::min<int64_t>(L, i1 - 1 + band.ahead + 1);
        const int64_t ns = k_hi - k_lo, lds = score_stride(ns);
        if (scores.size() < static_cast<size_t>(nq * lds)) scores.resize(static_cast<size_t>(nq * lds));
        ko.scores(nq, ns, qh, ldq, kvh, k_lo, scores.data(), lds, qbuf);
        softmax_pv_block(rk, scores.data(), lds, nq, ns, i0, k_lo, band, p, ko.values(kvh, k_lo, pbuf), acc.data(),
                         inv.data(), out + i0 * ldo + h * hd, ldo);
      }
    }
  }
}

// The same softmax for one query row over the union of the spans (their scores side by side).
// The keys are taken in blocks of row_block(n) keys: every phase but the two small combines below runs
// block by block, over the threads when there are enough keys (from kRowParallelKeys), so each
// K and V row is read from memory once per token, by one thread. Within a block, the query heads that
// share a kv head (all four in the 270m/1b: multi-query attention) walk the keys together in chunks of
// kRowChunk, so a K or V row serves all of them from cache. The softmax sum and the P·V accumulators
// are formed per block (keys in order) and then added block after block, so the arithmetic depends on
// the number of keys only: never on the thread count. With fewer than kRowParallelKeys keys (every short
// input) this is a plain in-order pass. K/V rows may be fp32, bf16 or int8 (KvRows).
constexpr int64_t kRowChunk = 32;          // keys per chunk (32 KiB of fp32 K or V at head_dim 256)
constexpr int64_t kRowParallelKeys = 192;  // fewer keys: one thread and one block
// Keys per block: all of them below kRowParallelKeys, else about a quarter (rounded up to 32), at most
// 2048: a function of n alone, so that the arithmetic does not depend on the threads. A decode step's
// self keys (hundreds) then split over the threads; long inputs keep 2048-key blocks (256-key blocks
// made 16K keys 1.7x slower). (Fewer keys stay on one thread even inside a decode step's team: a 130-key
// row split in two blocks over the team made a q4 decode step's decoder 3-9% slower.)
inline int64_t row_block(int64_t n) {
  return n < kRowParallelKeys ? std::max<int64_t>(n, 1) : std::clamp<int64_t>((n + 127) / 128 * 32, 32, 2048);
}

namespace {

// f(span, first key within the span, count, column of the first key in the row) for the keys [k0, k1)
// of the spans laid side by side.
template <class F>
void for_each_span_piece(const KvSpan* spans, int n_spans, int64_t k0, int64_t k1, F&& f) {
  int64_t c = 0;
  for (int si = 0; si < n_spans && c < k1; c += spans[si].n, ++si) {
    const int64_t lo = std::max<int64_t>(k0, c), hi = std::min<int64_t>(k1, c + spans[si].n);
    if (lo < hi) f(spans[si], lo - c, hi - lo, lo);
  }
}

// The rows from `row`, columns from `col` (scale column `scol` for int8) of r.
KvRows rows_at(const KvRows& r, int64_t ld, int64_t row, int64_t col, int64_t scol) {
  KvRows o = r;
  const int64_t off = row * ld + col;
  if (r.f) o.f = r.f + off;
  if (r.b) o.b = r.b + off;
  if (r.q) {
    o.q = r.q + off;
    o.s = r.s + row * r.sld + scol;
  }
  return o;
}

}  // namespace

void attention_row(const float* q, const KvSpan* spans, int n_spans, float* out, const AttnParams& p) {
  const RowKernels& rk = row_kernels();
  const int64_t hd = p.head_dim, H = p.num_heads, KVH = p.num_kv_heads;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const bool exact_probs = p.precision != Precision::kF32;
  const float* cap = p.softcap ? &*p.softcap : nullptr;
  int64_t n = 0;
  for (int si = 0; si < n_spans; ++si) n += spans[si].n;
  const int64_t blk = row_block(n);
  const int64_t nblk = std::max<int64_t>(1, (n + blk - 1) / blk);
  // Split over the threads: the decode step's team when this thread leads one (team.h), else a parallel
  // region of its own (not from inside another).
  const bool parallel = n >= kRowParallelKeys && (team_size() > 1 || !omp_in_parallel());
  std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(1, H * n)));
  std::vector<float> bmax(static_cast<size_t>(nblk * H)), bsum(static_cast<size_t>(nblk * H));
  std::vector<float> part(static_cast<size_t>(nblk * H * hd), 0.f);  // per block P·V, [nblk][H][hd]
  std::vector<float> rmax(static_cast<size_t>(H)), fac(static_cast<size_t>(H));  // per head: row max, 1/sum
  // The phases over the blocks: split over the threads (team_for, dynamic), or all on this thread without
  // entering a region (fewer than kRowParallelKeys keys, or called from inside a parallel region): an
  // `omp parallel if (false)` still starts a team of one, and a batch-1 decode step's row over a short
  // input (130 keys) took 13.4 us that way against 6.6 us (BM_AttentionRow/keys:130). The two combines
  // between them run on this thread.
  // 1. Scores and their finish (round, scale, softcap) and block maxima.
  team_for(nblk, parallel, [&](int64_t bi) {
    const int64_t k0 = bi * blk, k1 = std::min(n, k0 + blk);
    for (int64_t kvh = 0; kvh < KVH; ++kvh)
      for_each_span_piece(spans, n_spans, k0, k1, [&](const KvSpan& sp, int64_t j0, int64_t cnt, int64_t col) {
        for (int64_t c0 = 0; c0 < cnt; c0 += kRowChunk) {
          const int64_t nc = std::min(kRowChunk, cnt - c0), h0 = kvh * group;
          rk.dot_heads(q + h0 * hd, hd, group, rows_at(sp.k, sp.ld, j0 + c0, kvh * hd, kvh), sp.ld, nc, hd,
                       scores.data() + h0 * n + col + c0, n);
        }
      });
    for (int64_t h = 0; h < H; ++h)
      bmax[bi * H + h] = rk.finish(scores.data() + h * n + k0, k1 - k0, 0, k1 - k0, p.scale, cap, p.precision);
  });
  // 2. The row maxima; exp(s - row max) and the block sums.
  for (int64_t h = 0; h < H; ++h) {
    float mx = bmax[h];
    for (int64_t j = 1; j < nblk; ++j) mx = std::max(mx, bmax[j * H + h]);
    rmax[h] = mx;
  }
  team_for(nblk, parallel, [&](int64_t bi) {
    const int64_t k0 = bi * blk, k1 = std::min(n, k0 + blk);
    for (int64_t h = 0; h < H; ++h) bsum[bi * H + h] = rk.exp_sum(scores.data() + h * n + k0, k1 - k0, rmax[h]);
  });
  // 3. Row sums, block after block; 1/sum.
  for (int64_t h = 0; h < H; ++h) {
    float sum = bsum[h];
    for (int64_t j = 1; j < nblk; ++j) sum += bsum[j * H + h];
    fac[h] = sum > 0.f ? 1.f / sum : 0.f;
  }
  // 4. Rounded probabilities (reduced precision), then the block's P·V.
  team_for(nblk, parallel, [&](int64_t bi) {
    const int64_t k0 = bi * blk, k1 = std::min(n, k0 + blk);
    if (exact_probs)
      for (int64_t h = 0; h < H; ++h) rk.scale_round(scores.data() + h * n + k0, k1 - k0, fac[h], p.precision);
    for (int64_t kvh = 0; kvh < KVH; ++kvh)
      for_each_span_piece(spans, n_spans, k0, k1, [&](const KvSpan& sp, int64_t j0, int64_t cnt, int64_t col) {
        for (int64_t c0 = 0; c0 < cnt; c0 += kRowChunk) {
          const int64_t nc = std::min(kRowChunk, cnt - c0), h0 = kvh * group;
          rk.axpy_heads(scores.data() + h0 * n + col + c0, n, group, rows_at(sp.v, sp.ld, j0 + c0, kvh * hd, kvh),
                        sp.ld, nc, hd, part.data() + (bi * H + h0) * hd, hd);
        }
      });
  });
  // 5. The blocks' P·V added in block order, times 1/sum unless the probabilities were already normalised
  // (rounded); the output rounded.
  // (Block-outer loops, so that the compiler vectorizes them: element by element, the same additions.)
  for (int64_t h = 0; h < H; ++h) {
    const float g = exact_probs ? 1.f : fac[h];
    float* o = out + h * hd;
    std::copy_n(part.data() + h * hd, hd, o);
    for (int64_t j = 1; j < nblk; ++j) {
      const float* pj = part.data() + (j * H + h) * hd;
      for (int64_t e = 0; e < hd; ++e) o[e] += pj[e];
    }
    if (g != 1.f)
      for (int64_t e = 0; e < hd; ++e) o[e] *= g;
    rk.round(o, hd, p.precision);
  }
}

}  // namespace t5g
