#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/matmul.h"

namespace t5g {

namespace {

// Turns raw q·k dot products into the reference's attention logits.
inline void finish_scores(float* s, int64_t n, const AttnParams& p) {
  const Precision pr = p.precision;
  for (int64_t i = 0; i < n; ++i) {
    float x = round_one(round_one(s[i], pr) * p.scale, pr);
    if (p.softcap) x = round_one(round_one(std::tanh(round_one(x / *p.softcap, pr)), pr) * *p.softcap, pr);
    s[i] = x;
  }
}

// Running state of an online softmax for one query row and head.
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.f;
  // Folds scores s[0..n) (already final logits; -inf = masked) into the state; turns s into the
  // unnormalised probabilities and returns the factor the previous accumulator must be scaled by.
  float fold(float* s, int64_t n) {
    float m = max;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, s[i]);
    if (m == -INFINITY) {  // everything masked so far
      for (int64_t i = 0; i < n; ++i) s[i] = 0.f;
      return 1.f;
    }
    const float alpha = std::exp(max - m);  // exp(-inf) = 0 on the first fold
    float add = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      s[i] = std::exp(s[i] - m);
      add += s[i];
    }
    sum = sum * alpha + add;
    max = m;
    return alpha;
  }
  // With max and sum final: turns logits s into the normalised probabilities, rounded to the
  // precision as the reference's softmax(dtype=float32).to(dtype) does.
  void probabilities(float* s, int64_t n, Precision pr) const {
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int64_t i = 0; i < n; ++i) s[i] = s[i] == -INFINITY ? 0.f : round_one(std::exp(s[i] - max) * inv, pr);
  }
};

constexpr int64_t kQueryBlock = 16;
constexpr int64_t kKeyBlock = 128;

}  // namespace

void attention_banded(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, float* out,
                      int64_t ldo, int64_t L, Band band, const AttnParams& p) {
  const int64_t hd = p.head_dim;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const int64_t n_qblocks = (L + kQueryBlock - 1) / kQueryBlock;
  // In reduced precision the reference rounds the normalised probabilities to bf16/f16 before
  // multiplying by V, which needs the row's max and sum first: a first pass over the keys
  // computes them, a second applies the exact probabilities. fp32 needs a single online pass.
  const bool exact_probs = p.precision != Precision::kF32;
#pragma omp parallel
  {
    std::vector<float> scores(kQueryBlock * kKeyBlock);
    std::vector<float> acc(kQueryBlock * hd);
    OnlineSoftmax sm[kQueryBlock];
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < p.num_heads; ++h) {
      for (int64_t qb = 0; qb < n_qblocks; ++qb) {
        const int64_t i0 = qb * kQueryBlock, i1 = std::min(L, i0 + kQueryBlock), nq = i1 - i0;
        const int64_t kvh = h / group;
        const float* qh = q + i0 * ldq + h * hd;
        const float* kh = k + kvh * hd;
        const float* vh = v + kvh * hd;
        const int64_t k_lo = std::max<int64_t>(0, i0 - band.behind);
        const int64_t k_hi = std::min<int64_t>(L, i1 - 1 + band.ahead + 1);
        // Final logits of queries [i0, i1) against keys [j0, j0 + nk); masked keys -> -inf.
        auto score_block = [&](int64_t j0, int64_t nk) {
          gemm_f32(nq, nk, hd, qh, ldq, kh + j0 * ldkv, ldkv, /*b_transposed=*/true, scores.data(), kKeyBlock, false);
          for (int64_t r = 0; r < nq; ++r) {
            float* s = scores.data() + r * kKeyBlock;
            finish_scores(s, nk, p);
            const int64_t i = i0 + r;
            for (int64_t c = 0; c < nk; ++c) {
              const int64_t j = j0 + c;
              if (j < i - band.behind || j > i + band.ahead) s[c] = -INFINITY;
            }
          }
        };
        std::fill(acc.begin(), acc.begin() + nq * hd, 0.f);
        for (int64_t r = 0; r < nq; ++r) sm[r] = OnlineSoftmax{};
        for (int64_t j0 = k_lo; j0 < k_hi; j0 += kKeyBlock) {
          const int64_t nk = std::min(kKeyBlock, k_hi - j0);
          score_block(j0, nk);
          for (int64_t r = 0; r < nq; ++r) {
            const float alpha = sm[r].fold(scores.data() + r * kKeyBlock, nk);
            if (!exact_probs && alpha != 1.f)
              for (int64_t d = 0; d < hd; ++d) acc[r * hd + d] *= alpha;
          }
          if (!exact_probs)
            gemm_f32(nq, hd, nk, scores.data(), kKeyBlock, vh + j0 * ldkv, ldkv, /*b_transposed=*/false, acc.data(),
                     hd, /*accumulate=*/true);
        }
        if (exact_probs) {
          for (int64_t j0 = k_lo; j0 < k_hi; j0 += kKeyBlock) {
            const int64_t nk = std::min(kKeyBlock, k_hi - j0);
            score_block(j0, nk);
            for (int64_t r = 0; r < nq; ++r) sm[r].probabilities(scores.data() + r * kKeyBlock, nk, p.precision);
            gemm_f32(nq, hd, nk, scores.data(), kKeyBlock, vh + j0 * ldkv, ldkv, /*b_transposed=*/false, acc.data(),
                     hd, /*accumulate=*/true);
          }
        }
        for (int64_t r = 0; r < nq; ++r) {
          float* o = out + (i0 + r) * ldo + h * hd;
          const float inv = exact_probs ? 1.f : sm[r].sum > 0.f ? 1.f / sm[r].sum : 0.f;  // masked row -> zeros
          for (int64_t d = 0; d < hd; ++d) o[d] = acc[r * hd + d] * inv;
          round_act(o, hd, p.precision);
        }
      }
    }
  }
}

void attention_row(const float* q, const KvSpan* spans, int n_spans, float* out, const AttnParams& p) {
  const int64_t hd = p.head_dim;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const bool exact_probs = p.precision != Precision::kF32;  // see attention_banded
  std::vector<float> scores(kKeyBlock);
  std::vector<float> acc(hd);
  for (int64_t h = 0; h < p.num_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kvh = h / group;
    auto score_block = [&](const KvSpan& sp, int64_t j0, int64_t nk) {
      for (int64_t c = 0; c < nk; ++c) {
        const float* kr = sp.k + (j0 + c) * sp.ld + kvh * hd;
        float d = 0.f;
        for (int64_t e = 0; e < hd; ++e) d += qh[e] * kr[e];
        scores[c] = d;
      }
      finish_scores(scores.data(), nk, p);
    };
    auto accumulate = [&](const KvSpan& sp, int64_t j0, int64_t nk) {
      for (int64_t c = 0; c < nk; ++c) {
        const float w = scores[c];
        const float* vr = sp.v + (j0 + c) * sp.ld + kvh * hd;
        for (int64_t e = 0; e < hd; ++e) acc[e] += w * vr[e];
      }
    };
    OnlineSoftmax sm;
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int si = 0; si < n_spans; ++si) {
      const KvSpan& sp = spans[si];
      for (int64_t j0 = 0; j0 < sp.n; j0 += kKeyBlock) {
        const int64_t nk = std::min(kKeyBlock, sp.n - j0);
        score_block(sp, j0, nk);
        const float alpha = sm.fold(scores.data(), nk);
        if (exact_probs) continue;
        if (alpha != 1.f)
          for (int64_t e = 0; e < hd; ++e) acc[e] *= alpha;
        accumulate(sp, j0, nk);
      }
    }
    if (exact_probs) {
      for (int si = 0; si < n_spans; ++si) {
        const KvSpan& sp = spans[si];
        for (int64_t j0 = 0; j0 < sp.n; j0 += kKeyBlock) {
          const int64_t nk = std::min(kKeyBlock, sp.n - j0);
          score_block(sp, j0, nk);
          sm.probabilities(scores.data(), nk, p.precision);
          accumulate(sp, j0, nk);
        }
      }
    }
    float* o = out + h * hd;
    const float inv = exact_probs ? 1.f : sm.sum > 0.f ? 1.f / sm.sum : 0.f;
    for (int64_t e = 0; e < hd; ++e) o[e] = acc[e] * inv;
    round_act(o, hd, p.precision);
  }
}

}  // namespace t5g
