// Grouped symmetric weight quantization (Q8, Q4; layout in matmul.h) and the plain row accessors
// shared by every weight format. Quantization runs once per matrix (at load or in `t5g quantize`),
// so it is written for clarity, multithreaded over rows only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/matmul.h"
#include "util/bf16.h"
#include "util/error.h"

namespace t5g {

const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::kF32: return "f32";
    case WeightType::kBF16: return "bf16";
    case WeightType::kF16: return "f16";
    case WeightType::kQ8: return "int8";
    case WeightType::kQ4: return "q4";
  }
  return "?";
}

int64_t weight_type_bytes(WeightType t) {
  switch (t) {
    case WeightType::kF32: return 4;
    case WeightType::kBF16:
    case WeightType::kF16: return 2;
    case WeightType::kQ8: return 1;
    case WeightType::kQ4: return 0;  // half a byte: use weight_matrix_bytes
  }
  return 0;
}

int64_t quant_data_bytes(WeightType type, int64_t rows, int64_t cols) {
  const int64_t q = quant_padded_cols(cols);
  return type == WeightType::kQ4 ? quant_padded_rows(rows) * q / 2 : quant_padded_rows(rows) * q;
}

int64_t quant_scale_count(int64_t rows, int64_t cols) {
  return quant_padded_rows(rows) * (quant_padded_cols(cols) / kQuantGroup);
}

int64_t weight_matrix_data_bytes(const WeightMatrix& w) {
  return is_quantized(w.type) ? quant_data_bytes(w.type, w.rows, w.cols) : w.rows * w.cols * weight_type_bytes(w.type);
}

int64_t weight_matrix_bytes(const WeightMatrix& w) {
  return weight_matrix_data_bytes(w) + (is_quantized(w.type) ? 2 * quant_scale_count(w.rows, w.cols) : 0);
}

void weight_row_f32(const WeightMatrix& w, int64_t r, float* out) {
  const int64_t K = w.cols;
  switch (w.type) {
    case WeightType::kF32: std::memcpy(out, static_cast<const float*>(w.data) + r * K, K * sizeof(float)); return;
    case WeightType::kBF16: {
      if (w.gemm_panels) {  // the same values from the panels (pair kk of row r: one dword of each line)
        const int64_t width = gemm_bf16_panel_width(), Kp = (K + 1) / 2;
        const uint32_t* p = w.gemm_panels + (r / width) * width * Kp + r % width;
        for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(static_cast<uint16_t>(p[(k / 2) * width] >> (16 * (k % 2))));
        return;
      }
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * K;
      for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(p[k]);
      return;
    }
    case WeightType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * K;
      for (int64_t k = 0; k < K; ++k) out[k] = f16_to_f32(p[k]);
      return;
    }
    case WeightType::kQ8: {
      const int64_t G = quant_padded_cols(K) / kQuantGroup;
      const uint8_t* q = static_cast<const uint8_t*>(w.data);
      for (int64_t k = 0; k < K; ++k)
        out[k] = static_cast<float>(static_cast<int>(q[q8_byte_index(r, k, G)]) - 128) *
                 f16_to_f32(w.scales[quant_scale_index(r, k / kQuantGroup, G)]);
      return;
    }
    case WeightType::kQ4: {
      const int64_t G = quant_padded_cols(K) / kQuantGroup;
      const uint8_t* q = static_cast<const uint8_t*>(w.data);
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t b = q[q4_byte_index(r, k, G)];
        const int nib = k % kQuantGroup < kQuantGroup / 2 ? (b & 0xf) : (b >> 4);
        out[k] = static_cast<float>(nib - 8) * f16_to_f32(w.scales[quant_scale_index(r, k / kQuantGroup, G)]);
      }
      return;
    }
  }
}

namespace {

// One group of kQuantGroup values (zero-padded past the row's end) into Q8: d = max|x| / 127.
uint16_t quantize_group_q8(const float* x, int8_t* q) {
  float amax = 0.f;
  for (int i = 0; i < kQuantGroup; ++i) amax = std::max(amax, std::fabs(x[i]));
  const uint16_t dh = f32_to_f16(amax / 127.f);
  const float d = f16_to_f32(dh);  // quantize against the scale as stored
  const float id = d > 0.f ? 1.f / d : 0.f;
  for (int i = 0; i < kQuantGroup; ++i)
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * id), -127.f, 127.f));
  return dh;
}

// Q4: the value of largest magnitude maps to -8 (d = that value / -8), so the full [-8, 7] range is used;
// its negation (+8) clamps to 7.
uint16_t quantize_group_q4(const float* x, int8_t* q) {
  float amax = 0.f, vmax = 0.f;
  for (int i = 0; i < kQuantGroup; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
  const uint16_t dh = f32_to_f16(vmax / -8.f);
  const float d = f16_to_f32(dh);
  const float id = d != 0.f ? 1.f / d : 0.f;
  for (int i = 0; i < kQuantGroup; ++i) q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * id), -8.f, 7.f));
  return dh;
}

// Group g of row r (q: 32 values) into the tiles (matmul.h).
void store_group(WeightType type, const int8_t* q, uint16_t d, int64_t r, int64_t g, int64_t G, uint8_t* data,
                 uint16_t* scales) {
  if (type == WeightType::kQ8) {
    for (int i = 0; i < kQuantGroup; ++i)
      data[q8_byte_index(r, g * kQuantGroup + i, G)] = static_cast<uint8_t>(static_cast<int>(q[i]) + 128);
  } else {
    constexpr int H = kQuantGroup / 2;
    for (int i = 0; i < H; ++i)
      data[q4_byte_index(r, g * kQuantGroup + i, G)] = static_cast<uint8_t>((q[i] + 8) | ((q[i + H] + 8) << 4));
  }
  scales[quant_scale_index(r, g, G)] = d;
}

// The padding rows (up to the next tile): q = 0, d = 0.
void zero_padding_rows(WeightType type, int64_t rows, int64_t G, uint8_t* data, uint16_t* scales) {
  const int8_t zero[kQuantGroup] = {};
  for (int64_t r = rows; r < quant_padded_rows(rows); ++r)
    for (int64_t g = 0; g < G; ++g) store_group(type, zero, 0, r, g, G, data, scales);
}

}  // namespace

void quantize_matrix(const WeightMatrix& src, WeightType type, void* data, uint16_t* scales) {
  check(is_quantized(type), "quantize_matrix: target type ", weight_type_name(type), " is not a quantized format");
  check(!is_quantized(src.type), "quantize_matrix: source is already quantized (", weight_type_name(src.type), ")");
  const int64_t K = src.cols, Q = quant_padded_cols(K), G = Q / kQuantGroup;
  uint8_t* bytes = static_cast<uint8_t*>(data);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(Q), 0.f);
    int8_t q[kQuantGroup];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < src.rows; ++r) {
      weight_row_f32(src, r, row.data());  // the padding past K stays zero
      for (int64_t g = 0; g < G; ++g) {
        const float* x = row.data() + g * kQuantGroup;
        const uint16_t d = type == WeightType::kQ8 ? quantize_group_q8(x, q) : quantize_group_q4(x, q);
        store_group(type, q, d, r, g, G, bytes, scales);
      }
    }
  }
  zero_padding_rows(type, src.rows, G, bytes, scales);
}

void quant_rows_to_tiles(WeightType type, const void* q, const uint16_t* d, int64_t rows, int64_t cols, void* data,
                         uint16_t* scales) {
  check(is_quantized(type), "quant_rows_to_tiles: ", weight_type_name(type), " is not a quantized format");
  const int64_t Q = quant_padded_cols(cols), G = Q / kQuantGroup;
  const uint8_t* in = static_cast<const uint8_t*>(q);
  uint8_t* bytes = static_cast<uint8_t*>(data);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < G; ++g) {
      int8_t v[kQuantGroup];
      constexpr int H = kQuantGroup / 2;
      for (int i = 0; i < kQuantGroup; ++i) {
        if (type == WeightType::kQ8) {
          v[i] = static_cast<int8_t>(in[r * Q + g * kQuantGroup + i]);
        } else {
          const uint8_t b = in[r * (Q / 2) + g * H + i % H];
          v[i] = static_cast<int8_t>((i < H ? (b & 0xf) : (b >> 4)) - 8);
        }
      }
      store_group(type, v, d[r * G + g], r, g, G, bytes, scales);
    }
  zero_padding_rows(type, rows, G, bytes, scales);
}

}  // namespace t5g
