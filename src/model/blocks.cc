#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/for_rows.h"
#include "util/error.h"

namespace t5g {

namespace {
void embed_row(const WeightMatrix& e, int64_t id, float* out) {
  const int64_t H = e.cols;
  switch (e.type) {
    case WeightType::kF32: std::memcpy(out, static_cast<const float*>(e.data) + id * H, H * sizeof(float)); break;
    case WeightType::kBF16:
      // Packed into the decode kernel's panels (huge-page weights): read there, where the decode step
      // streams it anyway, instead of faulting the released mapped pages back in (64 KB around each row).
      if (e.gemm_panels) weight_row_f32(e, id, out);
      else convert_bf16_to_f32(static_cast<const uint16_t*>(e.data) + id * H, out, H);
      break;
    case WeightType::kF16: convert_f16_to_f32(static_cast<const uint16_t*>(e.data) + id * H, out, H); break;
    default: weight_row_f32(e, id, out); break;  // quantized table
  }
}
constexpr int64_t kMlpChunk = 1024;  // rows per MLP chunk: bounds the [rows, intermediate] buffers
}  // namespace

float attention_scale(const TextConfig& c) {
  return static_cast<float>(std::pow(c.query_pre_attn_scalar, -0.5));
}

AttnParams text_attention_params(const TextConfig& c, Precision p) {
  AttnParams ap;
  ap.num_heads = c.num_heads;
  ap.num_kv_heads = c.num_kv_heads;
  ap.head_dim = c.head_dim;
  ap.scale = attention_scale(c);
  ap.precision = p;
  return ap;
}

RopeTables make_rope_tables(const TextConfig& c, const int64_t* positions, int64_t n, Precision p) {
  return RopeTables{
      make_rope_table(positions, n, c.head_dim, c.rope_sliding.theta, c.rope_sliding.linear_factor, p),
      make_rope_table(positions, n, c.head_dim, c.rope_full.theta, c.rope_full.linear_factor, p)};
}

void embed_tokens(const ModelWeights& w, const ModelConfig& cfg, const int32_t* ids, int64_t n, float* out) {
  const int64_t H = w.embed.cols, V = w.embed.rows;
  for (int64_t i = 0; i < n; ++i) {
    check(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " at position ", i, " is outside the vocabulary (0..", V - 1,
          ")");
    float* o = out + i * H;
    if (ids[i] == cfg.eoi_token_id) {
      for (int64_t j = 0; j < H; ++j) o[j] = w.eoi[j];
      continue;
    }
    embed_row(w.embed, ids[i], o);
    for (int64_t j = 0; j < H; ++j) o[j] = round_one(o[j] * w.embed_scale, w.precision);
  }
}

namespace {
// f(t) for the tokens t < n: over the threads for an encode or a prefill, and for a batched decode step's
// rows inside its team (a hand-off there is 0.24 us; batch 8: decoder step -1.3 to -3.1%, three in-process
// A/B runs); a single row, or a few outside a team, on this thread.
template <typename F>
void for_tokens(int64_t n, F&& f) {
  for_rows(n, n >= 16 || (n >= 2 && team_size() > 1), f);
}

// Token t's k and v (rows of kv_dim) as the projections leave them: rounded, k normalised per head. The
// callers run all of a token's work after the products in one pass over the tokens (the kernels stay on
// the calling thread for one row): as seven whole-array ops, each its own parallel region, it took 2.2-2.3
// ms of a 128-token encode against 2.0 now.
void finish_kv_row(const AttentionWeights& a, const TextConfig& c, float* k, float* v, Precision p) {
  const int64_t kvd = c.kv_dim(), hd = c.head_dim;
  round_act(k, kvd, p);
  round_act(v, kvd, p);
  rms_norm(k, c.num_kv_heads, hd, hd, a.k_norm.data(), static_cast<float>(c.rms_norm_eps), k, hd, p);
}
}  // namespace

void project_kv(const AttentionWeights& a, const TextConfig& c, const float* xn, int64_t n, float* k, float* v,
                Precision p, bool row_stable) {
  const int64_t kvd = c.kv_dim();
  const MatmulOut parts[] = {{&a.k, k, kvd}, {&a.v, v, kvd}};
  matmul_parts(xn, n, c.hidden_size, parts, 2, MatmulOptions{p == Precision::kBF16, row_stable});
  for_tokens(n, [&](int64_t t) { finish_kv_row(a, c, k + t * kvd, v + t * kvd, p); });
}

void project_qkv(const AttentionWeights& a, const TextConfig& c, const float* xn, int64_t n, float* q, float* k,
                 float* v, const RopeTable* rope, Precision p, bool row_stable) {
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  // One schedule for the three (decode, and prefill up to 256 rows): k and v alone are too small to
  // split well over the threads.
  const MatmulOut parts[] = {{&a.q, q, qd}, {&a.k, k, kvd}, {&a.v, v, kvd}};
  matmul_parts(xn, n, c.hidden_size, parts, 3, MatmulOptions{p == Precision::kBF16, row_stable});
  for_tokens(n, [&](int64_t t) {
    float *qt = q + t * qd, *kt = k + t * kvd;
    round_act(qt, qd, p);
    rms_norm(qt, c.num_heads, hd, hd, a.q_norm.data(), static_cast<float>(c.rms_norm_eps), qt, hd, p);
    finish_kv_row(a, c, kt, v + t * kvd, p);
    if (rope != nullptr) {
      apply_rope_row(qt, c.num_heads, hd, *rope, t, p);
      apply_rope_row(kt, c.num_kv_heads, hd, *rope, t, p);
    }
  });
}

void attention_output(const TextLayerWeights& l, const TextConfig& c, const float* attn, int64_t n, float* h,
                      std::vector<float>& scratch, Precision p, bool row_stable) {
  const int64_t H = c.hidden_size;
  scratch.resize(static_cast<size_t>(n * H));
  matmul(attn, n, c.q_dim(), l.attn.o, scratch.data(), H, MatmulOptions{p == Precision::kBF16, row_stable});
  prefetch_decode_shares({&l.mlp.gate, &l.mlp.up});  // (in a decode step's team: its next product, see matmul.h)
  post_norm_residual(scratch.data(), n, H, l.post_attn_norm.data(), static_cast<float>(c.rms_norm_eps), h, p);
}

void mlp_block(const TextLayerWeights& l, const TextConfig& c, float* h, int64_t n, std::vector<float>& scratch,
               Precision p, bool row_stable) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MatmulOptions mo{p == Precision::kBF16, row_stable};
  const int64_t chunk = std::min(n, kMlpChunk);
  // The caller's buffer, kept across layers: fresh vectors per layer cost a page fault and a zero fill per
  // 4 KiB (a twelfth of a 128-token encode, with the other thread idle meanwhile).
  scratch.resize(std::max(scratch.size(), static_cast<size_t>(chunk * (2 * H + 2 * I))));
  float* xn = scratch.data();
  float* gate = xn + chunk * H;
  float* up = gate + chunk * I;
  float* out = up + chunk * I;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t m = std::min(chunk, n - r0);
    float* hr = h + r0 * H;
    rms_norm(hr, m, H, H, l.pre_ff_norm.data(), eps, xn, H, p);
    const MatmulOut parts[] = {{&l.mlp.gate, gate, I}, {&l.mlp.up, up, I}};
    matmul_parts(xn, m, H, parts, 2, mo);
    prefetch_decode_shares({&l.mlp.down});
    gelu_mul(gate, up, m * I, c.activation == Activation::kGeluTanh, p);  // rounds gate and up first
    matmul(gate, m, I, l.mlp.down, out, H, mo);
    post_norm_residual(out, m, H, l.post_ff_norm.data(), eps, hr, p);
  }
}

}  // namespace t5g
