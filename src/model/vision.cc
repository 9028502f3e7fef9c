#include "model/vision.h"

#include <cmath>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "util/aligned_bytes.h"
#include "util/error.h"

namespace t5g {

namespace {

// y[n, :] = round(x[n, :] · Wᵀ + b): a biased linear layer, the bias added before the one
// rounding of the output (as PyTorch's fused addmm).
void linear_bias(const float* x, int64_t n, int64_t in, const WeightMatrix& W, const std::vector<float>& b, float* y,
                 Precision p) {
  matmul(x, n, in, W, y, W.rows, MatmulOptions{p == Precision::kBF16});
  add_bias(y, n, W.rows, W.rows, b.data(), p);
}

// One of the tower's activations (n floats, zero): 4096 x 1152 each at full size, the MLP's 4096 x 4304 (70
// MB). From 2 MiB on, in huge pages where the kernel offers them (AlignedBytes), and without the vector's
// memset: the first image otherwise took 75K page faults on them (0.5-1 s of kernel time in this VM), and
// every image refaulted the MLP's buffer (above glibc's mmap threshold) 4 KiB at a time.
class TowerBuffer {
 public:
  explicit TowerBuffer(int64_t n) : bytes_(static_cast<size_t>(n) * sizeof(float)), n_(n) {}
  float* data() { return reinterpret_cast<float*>(bytes_.data()); }
  int64_t size() const { return n_; }

 private:
  AlignedBytes bytes_;
  int64_t n_;
};

}  // namespace

std::vector<float> run_vision_tower(const ModelWeights& w, const ModelConfig& cfg, const float* pixels,
                                    const HiddenStateHook& hook) {
  const VisionWeights& vw = w.vision;
  check(vw.present, "this checkpoint has no vision tower; it cannot take images");
  const VisionConfig& c = cfg.vision;
  const Precision p = w.precision;
  const int64_t C = c.num_channels, S = c.image_size, P = c.patch_size, G = S / P, N = G * G, Hv = c.hidden_size;
  const int64_t K = C * P * P, hd = Hv / c.num_heads;

  // Patch embedding = a stride-P convolution: gather each patch (c, ky, kx order, as the OIHW
  // weight flattens) and multiply. Pixels are rounded to the compute precision first.
  TowerBuffer x(N * Hv);
  {  // (each buffer is freed after its last use: the tower's peak memory)
    TowerBuffer patches(N * K);
    for (int64_t gy = 0; gy < G; ++gy)
      for (int64_t gx = 0; gx < G; ++gx) {
        float* dst = patches.data() + (gy * G + gx) * K;
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t ky = 0; ky < P; ++ky)
            for (int64_t kx = 0; kx < P; ++kx)
              *dst++ = round_one(pixels[(ch * S + gy * P + ky) * S + gx * P + kx], p);
      }
    linear_bias(patches.data(), N, K, vw.patch, vw.patch_b, x.data(), p);
  }
  add(x.data(), vw.pos_embed.data(), x.data(), N * Hv, p);
  if (hook) hook(0, x.data(), N);

  AttnParams ap;
  ap.num_heads = c.num_heads;
  ap.num_kv_heads = c.num_heads;
  ap.head_dim = hd;
  ap.scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));
  ap.precision = p;
  const float eps = static_cast<float>(c.layer_norm_eps);
  const bool tanh_gelu = c.activation == Activation::kGeluTanh;
  {
    TowerBuffer xn(N * Hv), q(N * Hv), k(N * Hv), v(N * Hv), attn(N * Hv), o(N * Hv);
    TowerBuffer h(N * c.intermediate_size);
    for (size_t li = 0; li < vw.layers.size(); ++li) {
      const VisionLayerWeights& l = vw.layers[li];
      layer_norm(x.data(), N, Hv, l.ln1_w.data(), l.ln1_b.data(), eps, xn.data(), p);
      linear_bias(xn.data(), N, Hv, l.q, l.q_b, q.data(), p);
      linear_bias(xn.data(), N, Hv, l.k, l.k_b, k.data(), p);
      linear_bias(xn.data(), N, Hv, l.v, l.v_b, v.data(), p);
      attention_banded(q.data(), Hv, k.data(), v.data(), Hv, attn.data(), Hv, N, Band{N, N}, ap);
      linear_bias(attn.data(), N, Hv, l.o, l.o_b, o.data(), p);
      add(x.data(), o.data(), x.data(), N * Hv, p);
      layer_norm(x.data(), N, Hv, l.ln2_w.data(), l.ln2_b.data(), eps, xn.data(), p);
      linear_bias(xn.data(), N, Hv, l.fc1, l.fc1_b, h.data(), p);
      gelu(h.data(), N * c.intermediate_size, tanh_gelu, p);
      linear_bias(h.data(), N, c.intermediate_size, l.fc2, l.fc2_b, o.data(), p);
      add(x.data(), o.data(), x.data(), N * Hv, p);
      if (hook) hook(static_cast<int>(li + 1), x.data(), N);
    }
  }
  std::vector<float> out(static_cast<size_t>(N * Hv));
  layer_norm(x.data(), N, Hv, vw.post_ln_w.data(), vw.post_ln_b.data(), eps, out.data(), p);
  return out;
}

std::vector<float> project_image(const ModelWeights& w, const ModelConfig& cfg, const float* vision_out) {
  const VisionConfig& c = cfg.vision;
  const Precision p = w.precision;
  const int64_t G = c.image_size / c.patch_size, Hv = c.hidden_size, H = cfg.encoder.hidden_size;
  const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(cfg.mm_tokens_per_image))));
  check(side * side == cfg.mm_tokens_per_image && side > 0 && G % side == 0, "mm_tokens_per_image (",
        cfg.mm_tokens_per_image, ") must be a square whose side divides the patch grid (", G, ")");
  const int64_t k = G / side, T = side * side;
  // AvgPool2d(k, k) over the patch grid: token t = (row t / side, col t % side).
  std::vector<float> pooled(static_cast<size_t>(T * Hv), 0.f);
  for (int64_t ty = 0; ty < side; ++ty)
    for (int64_t tx = 0; tx < side; ++tx) {
      float* dst = pooled.data() + (ty * side + tx) * Hv;
      for (int64_t dy = 0; dy < k; ++dy)
        for (int64_t dx = 0; dx < k; ++dx) {
          const float* src = vision_out + ((ty * k + dy) * G + tx * k + dx) * Hv;
          for (int64_t j = 0; j < Hv; ++j) dst[j] += src[j];
        }
      for (int64_t j = 0; j < Hv; ++j) dst[j] = round_one(dst[j] / static_cast<float>(k * k), p);
    }
  rms_norm(pooled.data(), T, Hv, Hv, w.vision.mm_norm.data(), static_cast<float>(c.layer_norm_eps), pooled.data(), Hv,
           p);
  std::vector<float> out(static_cast<size_t>(T * H));
  matmul(pooled.data(), T, Hv, w.vision.mm_proj_t, out.data(), H, MatmulOptions{p == Precision::kBF16});
  round_act(out.data(), T * H, p);
  return out;
}

std::vector<float> image_features(const ModelWeights& w, const ModelConfig& cfg, const float* pixels) {
  std::vector<float> tower = run_vision_tower(w, cfg, pixels);
  return project_image(w, cfg, tower.data());
}

}  // namespace t5g
