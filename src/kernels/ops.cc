#include "kernels/ops.h"

#include <cmath>

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

void round_act(float* x, int64_t n, Precision p) {
  if (p == Precision::kF32) return;
  if (p == Precision::kBF16) {
    for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = round_f16(x[i]);
  }
}

void rms_norm(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
              int64_t ldy, Precision p) {
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    float ss = 0.f;
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] * inv) * gain[i];
    round_act(yr, n, p);
  }
}

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y,
                Precision p) {
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double mean = 0.0;
    for (int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(n);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    round_act(yr, n, p);
  }
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
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gate[i] = round_one(round_one(gelu_one(gate[i], tanh_approx), p) * up[i], p);
}

void gelu(float* x, int64_t n, bool tanh_approx, Precision p) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] = round_one(gelu_one(x[i], tanh_approx), p);
}

void add(const float* a, const float* b, float* y, int64_t n, Precision p) {
  for (int64_t i = 0; i < n; ++i) y[i] = round_one(a[i] + b[i], p);
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
  for (int64_t i = 0; i < T; ++i) {
    const float pos = static_cast<float>(positions[i]);
    for (int64_t j = 0; j < t.half; ++j) {
      const float angle = pos * inv_freq[j];  // fp32 product, as the reference's fp32 matmul
      t.cos[i * t.half + j] = round_one(static_cast<float>(std::cos(static_cast<double>(angle))), p);
      t.sin[i * t.half + j] = round_one(static_cast<float>(std::sin(static_cast<double>(angle))), p);
    }
  }
  return t;
}

void apply_rope(float* x, int64_t T, int64_t ldx, int64_t n_heads, int64_t head_dim, const RopeTable& table,
                Precision p) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (T > 16)
  for (int64_t t = 0; t < T; ++t) {
    const float* c = table.cos.data() + t * half;
    const float* s = table.sin.data() + t * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + t * ldx + h * head_dim;
      for (int64_t j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        // x*cos + rotate_half(x)*sin with rotate_half(x) = [-x2, x1]; each op rounded as in the reference.
        v[j] = round_one(round_one(a * c[j], p) + round_one(-b * s[j], p), p);
        v[j + half] = round_one(round_one(b * c[j], p) + round_one(a * s[j], p), p);
      }
    }
  }
}

void softcap(float* x, int64_t n, float cap, Precision p) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_one(round_one(std::tanh(round_one(x[i] / cap, p)), p) * cap, p);
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
