#include "model/encoder.h"

#include <numeric>

#include "kernels/attention.h"
#include "model/blocks.h"
#include "util/error.h"

namespace t5g {

Band encoder_band(const TextConfig& c, LayerType t, int64_t L) {
  if (t == LayerType::kFull) return Band{L, L};
  const int64_t W = c.sliding_window;
  return Band{(W + 1) / 2 - 1, W / 2};
}

std::vector<float> run_encoder(const ModelWeights& w, const ModelConfig& cfg, const EncoderInput& in,
                               const HiddenStateHook& hook) {
  const TextConfig& c = cfg.encoder;
  const Precision p = w.precision;
  const int64_t L = in.length, H = c.hidden_size;
  check(L > 0, "encoder input is empty");
  std::vector<float> h(static_cast<size_t>(L * H));
  embed_tokens(w, cfg, in.ids, L, h.data());

  // Image features replace the image-token rows in order (spec §5.3).
  int64_t n_img = 0;
  for (int64_t i = 0; i < L; ++i) n_img += in.ids[i] == cfg.image_token_id;
  check(n_img == in.image_feature_rows, "the input has ", n_img, " image tokens (id ", cfg.image_token_id,
        ") but ", in.image_feature_rows, " image feature rows were given (", cfg.mm_tokens_per_image,
        " per image)");
  for (int64_t i = 0, r = 0; i < L; ++i)
    if (in.ids[i] == cfg.image_token_id) {
      std::copy(in.image_features + r * H, in.image_features + (r + 1) * H, h.begin() + i * H);
      ++r;
    }
  if (hook) hook(0, h.data(), L);

  std::vector<int64_t> pos(static_cast<size_t>(L));
  std::iota(pos.begin(), pos.end(), in.position_offset);
  const RopeTables rope = make_rope_tables(c, pos.data(), L, p);
  const AttnParams ap = text_attention_params(c, p);

  const int64_t qd = c.q_dim(), kvd = c.kv_dim();
  std::vector<float> xn(static_cast<size_t>(L * H)), q(static_cast<size_t>(L * qd)), k(static_cast<size_t>(L * kvd)),
      v(static_cast<size_t>(L * kvd)), attn(static_cast<size_t>(L * qd)), scratch, mlp_scratch;
  const float eps = static_cast<float>(c.rms_norm_eps);
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const TextLayerWeights& l = w.encoder[li];
    const LayerType type = c.layer_types[li];
    rms_norm(h.data(), L, H, H, l.pre_attn_norm.data(), eps, xn.data(), H, p);
    project_qkv(l.attn, c, xn.data(), L, q.data(), k.data(), v.data(), &rope.of(type), p);
    attention_banded(q.data(), qd, k.data(), v.data(), kvd, attn.data(), qd, L, encoder_band(c, type, L), ap);
    attention_output(l, c, attn.data(), L, h.data(), scratch, p);
    mlp_block(l, c, h.data(), L, mlp_scratch, p);
    if (hook) hook(static_cast<int>(li + 1), h.data(), L);
  }
  std::vector<float> out(static_cast<size_t>(L * H));
  rms_norm(h.data(), L, H, H, w.encoder_norm.data(), eps, out.data(), H, p);
  return out;
}

}  // namespace t5g
