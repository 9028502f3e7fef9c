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
  return type == WeightType::kQ4 ? rows * q / 2 : q8_padded_rows(rows) * q;
}

int64_t quant_scale_count(WeightType type, int64_t rows, int64_t cols) {
  return (type == WeightType::kQ8 ? q8_padded_rows(rows) : rows) * (quant_padded_cols(cols) / kQuantGroup);
}

int64_t weight_matrix_bytes(const WeightMatrix& w) {
  if (is_quantized(w.type))
    return quant_data_bytes(w.type, w.rows, w.cols) + 2 * quant_scale_count(w.type, w.rows, w.cols);
  return w.rows * w.cols * weight_type_bytes(w.type);
}

void weight_row_f32(const WeightMatrix& w, int64_t r, float* out) {
  const int64_t K = w.cols;
  switch (w.type) {
    case WeightType::kF32: std::memcpy(out, static_cast<const float*>(w.data) + r * K, K * sizeof(float)); return;
    case WeightType::kBF16: {
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
                 f16_to_f32(w.scales[q8_scale_index(r, k / kQuantGroup, G)]);
      return;
    }
    case WeightType::kQ4: {
      const int64_t Q = quant_padded_cols(K);
      const uint8_t* q = static_cast<const uint8_t*>(w.data) + r * (Q / 2);
      const uint16_t* d = w.scales + r * (Q / kQuantGroup);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t g = k / kQuantGroup, j = k % kQuantGroup;
        const uint8_t byte = q[g * (kQuantGroup / 2) + (j % (kQuantGroup / 2))];
        const int nib = j < kQuantGroup / 2 ? (byte & 0xf) : (byte >> 4);
        out[k] = static_cast<float>(nib - 8) * f16_to_f32(d[g]);
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
uint16_t quantize_group_q4(const float* x, uint8_t* q) {
  float amax = 0.f, vmax = 0.f;
  for (int i = 0; i < kQuantGroup; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
  const uint16_t dh = f32_to_f16(vmax / -8.f);
  const float d = f16_to_f32(dh);
  const float id = d != 0.f ? 1.f / d : 0.f;
  constexpr int H = kQuantGroup / 2;
  for (int j = 0; j < H; ++j) {
    const int lo = static_cast<int>(std::clamp(std::nearbyint(x[j] * id), -8.f, 7.f)) + 8;
    const int hi = static_cast<int>(std::clamp(std::nearbyint(x[j + H] * id), -8.f, 7.f)) + 8;
    q[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
  return dh;
}

// Q8 group g of row r (q: 32 values) into the tiles.
void store_group_q8(const int8_t* q, uint16_t d, int64_t r, int64_t g, int64_t G, uint8_t* data, uint16_t* scales) {
  for (int i = 0; i < kQuantGroup; ++i)
    data[q8_byte_index(r, g * kQuantGroup + i, G)] = static_cast<uint8_t>(static_cast<int>(q[i]) + 128);
  scales[q8_scale_index(r, g, G)] = d;
}

// Q8's padding rows (up to the next tile): q = 0 (byte 128), d = 0.
void zero_q8_padding(int64_t rows, int64_t G, uint8_t* data, uint16_t* scales) {
  const int8_t zero[kQuantGroup] = {};
  for (int64_t r = rows; r < q8_padded_rows(rows); ++r)
    for (int64_t g = 0; g < G; ++g) store_group_q8(zero, 0, r, g, G, data, scales);
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
    int8_t q8[kQuantGroup];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < src.rows; ++r) {
      weight_row_f32(src, r, row.data());  // the padding past K stays zero
      for (int64_t g = 0; g < G; ++g) {
        const float* x = row.data() + g * kQuantGroup;
        if (type == WeightType::kQ8)
          store_group_q8(q8, quantize_group_q8(x, q8), r, g, G, bytes, scales);
        else
          scales[r * G + g] = quantize_group_q4(x, bytes + r * (Q / 2) + g * (kQuantGroup / 2));
      }
    }
  }
  if (type == WeightType::kQ8) zero_q8_padding(src.rows, G, bytes, scales);
}

void q8_rows_to_tiles(const int8_t* q, const uint16_t* d, int64_t rows, int64_t cols, void* data, uint16_t* scales) {
  const int64_t Q = quant_padded_cols(cols), G = Q / kQuantGroup;
  uint8_t* bytes = static_cast<uint8_t*>(data);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < G; ++g) store_group_q8(q + r * Q + g * kQuantGroup, d[r * G + g], r, g, G, bytes, scales);
  zero_q8_padding(rows, G, bytes, scales);
}

}  // namespace t5g
