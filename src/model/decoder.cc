#include "model/decoder.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/team.h"
#include "model/blocks.h"
#include "util/error.h"

namespace t5g {

size_t CrossKv::bytes() const {
  size_t n = 0;
  for (const auto& l : layers)
    n += (l.k.capacity() + l.v.capacity() + l.ks.capacity() + l.vs.capacity()) * sizeof(float) +
         (l.kb.capacity() + l.vb.capacity()) * sizeof(uint16_t) + l.kq.capacity() + l.vq.capacity();
  return n;
}

size_t DecoderState::bytes() const {
  size_t n = cross ? cross->bytes() : 0;
  for (const auto& l : layers)
    n += (l.k.capacity() + l.v.capacity()) * sizeof(float) + (l.kb.capacity() + l.vb.capacity()) * sizeof(uint16_t);
  return n;
}

KvSpan CrossKv::span(int64_t layer, int64_t kvd, int64_t kv_heads, int64_t S) const {
  const Layer& x = layers[static_cast<size_t>(layer)];
  if (!x.kb.empty()) return kv_span_bf16(x.kb.data(), x.vb.data(), kvd, S);
  if (x.kq.empty()) return kv_span_f32(x.k.data(), x.v.data(), kvd, S);
  return KvSpan{KvRows{.q = x.kq.data(), .s = x.ks.data(), .sld = kv_heads},
                KvRows{.q = x.vq.data(), .s = x.vs.data(), .sld = kv_heads}, kvd, S};
}

CrossKvFormat parse_cross_kv_format(const std::string& s) {
  if (s == "auto") return CrossKvFormat::kAuto;
  if (s == "int8") return CrossKvFormat::kInt8;
  throw Error("unknown cross K/V format \"" + s + "\" (expected auto or int8)");
}

CrossKvStorage cross_kv_storage(CrossKvFormat f, Precision p) {
  if (f == CrossKvFormat::kInt8) return CrossKvStorage::kInt8;
  return p == Precision::kBF16 ? CrossKvStorage::kBF16 : CrossKvStorage::kF32;
}

const char* cross_kv_storage_name(CrossKvStorage s) {
  switch (s) {
    case CrossKvStorage::kInt8: return "int8";
    case CrossKvStorage::kBF16: return "bf16";
    case CrossKvStorage::kF32: break;
  }
  return "fp32";
}

double cross_kv_element_bytes(CrossKvStorage s, int64_t head_dim) {
  switch (s) {
    case CrossKvStorage::kInt8: return 1.0 + 4.0 / static_cast<double>(head_dim);
    case CrossKvStorage::kBF16: return 2.0;
    case CrossKvStorage::kF32: break;
  }
  return 4.0;
}

namespace {

// Rows [0, n) of x ([n, kv_heads * hd]) as int8 with one scale per (row, kv head): d = max|x| / 127,
// q = round(x / d). A head slice holding a NaN or an infinity gets a NaN scale (and q = 0), so that it
// reaches the output as a non-finite value, as it would in fp32; an all-zero slice gets d = 0.
void quantize_rows_int8(const float* x, int64_t n, int64_t kv_heads, int64_t hd, int8_t* q, float* scale) {
#pragma omp parallel for schedule(static) if (n * kv_heads * hd > (int64_t(1) << 16))
  for (int64_t r = 0; r < n * kv_heads; ++r) {
    const float* xs = x + r * hd;
    float amax = 0.f;
    bool nan = false;
    for (int64_t e = 0; e < hd; ++e) {
      nan |= std::isnan(xs[e]);
      amax = std::max(amax, std::fabs(xs[e]));
    }
    if (nan || !std::isfinite(amax)) {
      std::fill(q + r * hd, q + (r + 1) * hd, int8_t{0});
      scale[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    for (int64_t e = 0; e < hd; ++e)
      q[r * hd + e] = static_cast<int8_t>(std::clamp(std::nearbyint(xs[e] * inv), -127.f, 127.f));
    scale[r] = amax / 127.f;
  }
}

}  // namespace

DecoderState start_decoder(const ModelWeights& w, const ModelConfig& cfg, const float* encoder_out, int64_t S,
                           CrossKvFormat format) {
  const TextConfig& c = cfg.decoder;
  check(S > 0, "decoder: empty encoder output");
  DecoderState st;
  st.encoder_length = S;
  st.layers.resize(static_cast<size_t>(c.num_layers));
  auto cross = std::make_shared<CrossKv>();
  cross->layers.resize(static_cast<size_t>(c.num_layers));
  const int64_t kvd = c.kv_dim(), n = S * kvd;
  const CrossKvStorage storage = cross_kv_storage(format, w.precision);
  const bool int8 = storage == CrossKvStorage::kInt8, bf16 = storage == CrossKvStorage::kBF16;
  std::vector<float> k, v;  // bf16 / int8: one layer's fp32 projections, converted below
  if (bf16 || int8) {
    k.resize(static_cast<size_t>(n));
    v.resize(static_cast<size_t>(n));
  }
  for (int64_t li = 0; li < c.num_layers; ++li) {
    DecoderLayerCache& lc = st.layers[li];
    lc.ring = c.layer_types[li] == LayerType::kSliding;
    lc.bf16 = w.precision == Precision::kBF16;
    lc.window = lc.ring ? c.sliding_window : 0;
    CrossKv::Layer& x = cross->layers[li];
    if (!bf16 && !int8) {
      x.k.resize(static_cast<size_t>(n));
      x.v.resize(static_cast<size_t>(n));
      project_kv(w.decoder[li].attn, c, encoder_out, S, x.k.data(), x.v.data(), w.precision);
      continue;
    }
    project_kv(w.decoder[li].attn, c, encoder_out, S, k.data(), v.data(), w.precision);
    if (int8) {
      const int64_t ns = S * c.num_kv_heads;
      x.kq.resize(static_cast<size_t>(n));
      x.vq.resize(static_cast<size_t>(n));
      x.ks.resize(static_cast<size_t>(ns));
      x.vs.resize(static_cast<size_t>(ns));
      quantize_rows_int8(k.data(), S, c.num_kv_heads, c.head_dim, x.kq.data(), x.ks.data());
      quantize_rows_int8(v.data(), S, c.num_kv_heads, c.head_dim, x.vq.data(), x.vs.data());
      continue;
    }
    x.kb.resize(static_cast<size_t>(n));
    x.vb.resize(static_cast<size_t>(n));
    constexpr int64_t kChunk = int64_t(1) << 16;
#pragma omp parallel for schedule(static) if (n > kChunk)
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t m = std::min(kChunk, n - i);
      convert_f32_to_bf16(k.data() + i, x.kb.data() + i, m);  // the values are bf16 already: no rounding
      convert_f32_to_bf16(v.data() + i, x.vb.data() + i, m);
    }
  }
  st.cross = std::move(cross);
  return st;
}

namespace {

// Cached rows [slot, slot + n) of a layer as an attention span.
KvSpan cached_span(const DecoderLayerCache& lc, int64_t slot, int64_t n, int64_t kvd) {
  if (lc.bf16) return kv_span_bf16(lc.kb.data() + slot * kvd, lc.vb.data() + slot * kvd, kvd, n);
  return kv_span_f32(lc.k.data() + slot * kvd, lc.v.data() + slot * kvd, kvd, n);
}

// The self keys a decoder query at position t sees, as spans over the cache and this step's new
// rows: positions [lo, t] with lo = t - W + 1 on sliding layers, 0 on full ones.
int self_spans(const DecoderLayerCache& lc, int64_t window, int64_t cached_len, int64_t t, const float* new_k,
               const float* new_v, int64_t kvd, KvSpan* out) {
  int n = 0;
  const int64_t lo = lc.ring ? std::max<int64_t>(0, t - window + 1) : 0;
  // cached positions [lo, cached_len)
  if (lo < cached_len) {
    if (!lc.ring) {
      out[n++] = cached_span(lc, lo, cached_len - lo, kvd);
    } else {
      const int64_t cap = lc.capacity;
      int64_t p = lo;
      while (p < cached_len) {
        const int64_t slot = p % cap;
        const int64_t run = std::min(cached_len - p, cap - slot);
        out[n++] = cached_span(lc, slot, run, kvd);
        p += run;
      }
    }
  }
  // new positions [max(lo, cached_len), t], stored at rows (p - cached_len) of new_k/new_v
  const int64_t a = std::max(lo, cached_len);
  out[n++] = kv_span_f32(new_k + (a - cached_len) * kvd, new_v + (a - cached_len) * kvd, kvd, t - a + 1);
  return n;
}

// Rows [0, n) of src into dst (fp32 or bf16) from row `row`.
void store_rows(std::vector<float>& f, std::vector<uint16_t>& b, bool bf16, int64_t row, const float* src, int64_t n,
                int64_t kvd) {
  if (bf16) convert_f32_to_bf16(src, b.data() + row * kvd, n * kvd);  // bf16 values already: exact
  else std::copy(src, src + n * kvd, f.begin() + row * kvd);
}

// Rows [0, rows) of a layer's cache allocated (kept: they stay at their slots).
void grow_rows(DecoderLayerCache& lc, int64_t rows, int64_t kvd) {
  const size_t n = static_cast<size_t>(rows * kvd);
  if (lc.bf16) {
    lc.kb.resize(n);
    lc.vb.resize(n);
  } else {
    lc.k.resize(n);
    lc.v.resize(n);
  }
  lc.capacity = rows;
}

void append_self(DecoderLayerCache& lc, int64_t cached_len, const float* new_k, const float* new_v, int64_t T,
                 int64_t kvd) {
  if (lc.ring) {
    if (lc.capacity < lc.window && cached_len + T > lc.capacity)
      grow_rows(lc, std::min(lc.window, std::max(cached_len + T, 2 * lc.capacity)), kvd);
    for (int64_t i = std::max<int64_t>(0, T - lc.capacity); i < T; ++i) {
      const int64_t slot = (cached_len + i) % lc.capacity;
      store_rows(lc.k, lc.kb, lc.bf16, slot, new_k + i * kvd, 1, kvd);
      store_rows(lc.v, lc.vb, lc.bf16, slot, new_v + i * kvd, 1, kvd);
    }
  } else {
    grow_rows(lc, cached_len + T, kvd);
    store_rows(lc.k, lc.kb, lc.bf16, cached_len, new_k, T, kvd);
    store_rows(lc.v, lc.vb, lc.bf16, cached_len, new_v, T, kvd);
  }
}

}  // namespace

namespace {

void decoder_forward_on_team(const ModelWeights& w, const ModelConfig& cfg, const std::vector<DecoderState*>& states,
                             const std::vector<std::span<const int32_t>>& tokens, std::vector<float>& hidden,
                             const HiddenStateHook& hook) {
  const TextConfig& c = cfg.decoder;
  const Precision p = w.precision;
  check(states.size() == tokens.size(), "decoder_forward: ", states.size(), " states but ", tokens.size(),
        " token lists");
  const int64_t B = static_cast<int64_t>(states.size());
  // Row layout: the new tokens of state 0, then of state 1, ...
  std::vector<int64_t> row0(static_cast<size_t>(B + 1), 0);
  for (int64_t b = 0; b < B; ++b) {
    check(!tokens[b].empty(), "decoder_forward: no tokens for sequence ", b);
    row0[b + 1] = row0[b] + static_cast<int64_t>(tokens[b].size());
  }
  const int64_t R = row0[B], H = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim();
  std::vector<int32_t> ids(static_cast<size_t>(R));
  std::vector<int64_t> pos(static_cast<size_t>(R));
  std::vector<int64_t> owner(static_cast<size_t>(R));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < static_cast<int64_t>(tokens[b].size()); ++i) {
      ids[row0[b] + i] = tokens[b][i];
      pos[row0[b] + i] = states[b]->length + i;
      owner[row0[b] + i] = b;
    }
  std::vector<float> h(static_cast<size_t>(R * H));
  embed_tokens(w, cfg, ids.data(), R, h.data());
  if (hook) hook(0, h.data(), R);

  const RopeTables rope = make_rope_tables(c, pos.data(), R, p);
  const AttnParams ap = text_attention_params(c, p);

  std::vector<float> xn(static_cast<size_t>(R * H)), q(static_cast<size_t>(R * qd)), k(static_cast<size_t>(R * kvd)),
      v(static_cast<size_t>(R * kvd)), attn(static_cast<size_t>(R * qd)), scratch, mlp_scratch;
  const float eps = static_cast<float>(c.rms_norm_eps);
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const TextLayerWeights& l = w.decoder[li];
    rms_norm(h.data(), R, H, H, l.pre_attn_norm.data(), eps, xn.data(), H, p);
    project_qkv(l.attn, c, xn.data(), R, q.data(), k.data(), v.data(), &rope.of(c.layer_types[li]), p,
                /*row_stable=*/true);
    prefetch_decode_shares({&l.attn.o});  // streamed by the waiting threads during the attention rows
    const auto attend = [&](int64_t r) {
      const int64_t b = owner[r];
      const DecoderState& st = *states[b];
      const DecoderLayerCache& lc = st.layers[li];
      KvSpan spans[4];
      int n = self_spans(lc, c.sliding_window, st.length, pos[r], k.data() + row0[b] * kvd, v.data() + row0[b] * kvd,
                         kvd, spans);
      spans[n++] = st.cross->span(li, kvd, c.num_kv_heads, st.encoder_length);
      attention_row(q.data() + r * qd, spans, n, attn.data() + r * qd, ap);
    };
    // Several rows: one per thread at a time. One row (batch-1 decode): attention_row itself splits a
    // long input's keys over the threads; called from inside even an if(false) parallel region, it ran
    // on one thread (libgomp made it a nested region), which at 8K input tokens cost a third of a step.
    team_for(R, R > 1, attend);
    for (int64_t b = 0; b < B; ++b)
      append_self(states[b]->layers[li], states[b]->length, k.data() + row0[b] * kvd, v.data() + row0[b] * kvd,
                  row0[b + 1] - row0[b], kvd);
    attention_output(l, c, attn.data(), R, h.data(), scratch, p, /*row_stable=*/true);
    mlp_block(l, c, h.data(), R, mlp_scratch, p, /*row_stable=*/true);
    if (hook) hook(static_cast<int>(li + 1), h.data(), R);
  }
  for (int64_t b = 0; b < B; ++b) states[b]->length += row0[b + 1] - row0[b];
  hidden.resize(static_cast<size_t>(R * H));
  rms_norm(h.data(), R, H, H, w.decoder_norm.data(), eps, hidden.data(), H, p);
}

}  // namespace

// The step runs as one team (kernels/team.h): its ~4 products per layer (row-stable, so always the decode
// kernels' schedule), norms and attention rows hand work to the threads by spinning instead of a fork
// and join each.
void decoder_forward(const ModelWeights& w, const ModelConfig& cfg, const std::vector<DecoderState*>& states,
                     const std::vector<std::span<const int32_t>>& tokens, std::vector<float>& hidden,
                     const HiddenStateHook& hook) {
  run_as_team(omp_get_max_threads(), [&] { decoder_forward_on_team(w, cfg, states, tokens, hidden, hook); });
}

void lm_head(const ModelWeights& w, const ModelConfig& cfg, const float* hidden, int64_t n, float* logits) {
  const int64_t V = w.embed.rows;
  // A bf16 model's logits are rounded by the product as it stores them (round_act's bits).
  const bool bf16 = w.precision == Precision::kBF16;
  const MatmulOut out{&w.embed, logits, V, bf16};
  matmul_parts(hidden, n, w.embed.cols, &out, 1, MatmulOptions{bf16, true});
  if (!bf16) round_act(logits, n * V, w.precision);
  if (cfg.decoder.final_logit_softcapping)
    softcap(logits, n * V, static_cast<float>(*cfg.decoder.final_logit_softcapping), w.precision);
}

}  // namespace t5g
