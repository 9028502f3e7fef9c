#include "image/resize.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "util/error.h"

namespace t5g {
namespace {

// Per-axis resampling table: output position i reads `size[i]` inputs from `first[i]` with the
// fixed-point weights k[i * ksize + j] (`precision` fractional bits).
struct AxisCoeffs {
  int ksize = 0;
  int precision = 0;
  std::vector<int> first;
  std::vector<int> size;
  std::vector<int32_t> k;
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Weights exactly as ATen's _compute_indices_min_size_weights_aa / Pillow's precompute_coeffs
// compute them (the two are the same double-precision arithmetic, operation for operation), then
// quantised the way each backend does.
AxisCoeffs compute_coeffs(int in_size, int out_size, ResizeFilter filter) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale >= 1.0 ? scale : 1.0;  // the filter widens only when shrinking
  const double support = 1.0 * filterscale;               // bilinear support is 1 input pixel
  const double invscale = 1.0 / filterscale;
  AxisCoeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.size.resize(out_size);
  std::vector<double> w(static_cast<size_t>(out_size) * c.ksize, 0.0);
  double wt_max = 0.0;
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    // The casts truncate toward zero, as the C casts in both references do.
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int xsize = std::clamp(xmax - xmin, 0, c.ksize);
    double* wi = &w[static_cast<size_t>(i) * c.ksize];
    double total = 0.0;
    for (int j = 0; j < xsize; ++j) {
      wi[j] = triangle((j + xmin - center + 0.5) * invscale);
      total += wi[j];
    }
    if (total != 0.0) {
      for (int j = 0; j < xsize; ++j) {
        wi[j] /= total;
        wt_max = std::max(wt_max, wi[j]);
      }
    }
    c.first[i] = xmin;
    c.size[i] = xsize;
  }
  if (filter == ResizeFilter::kPilBilinear) {
    c.precision = 22;  // PRECISION_BITS = 32 - 8 - 2 in Pillow
  } else {
    // ATen picks the largest precision (< 22) at which the largest weight still fits in int16.
    unsigned p = 0;
    for (p = 0; p < 22; ++p) {
      const int next = static_cast<int>(0.5 + wt_max * (1 << (p + 1)));
      if (next >= (1 << 15)) break;
    }
    c.precision = static_cast<int>(p);
  }
  c.k.resize(w.size());
  const double one = static_cast<double>(1 << c.precision);
  for (size_t i = 0; i < w.size(); ++i) {
    const double v = w[i] * one;
    c.k[i] = static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
  }
  return c;
}

inline uint8_t clamp_shift(int32_t acc, int precision) {
  const int32_t v = acc >> precision;  // arithmetic shift: floor, as _mm256_srai_epi32 / Pillow's clip8
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// src: h rows of w RGB pixels (row stride src_stride) -> h rows of out_w pixels (packed).
void resample_horizontal(const uint8_t* src, int h, int src_stride, int out_w, const AxisCoeffs& c,
                         uint8_t* dst) {
  const int32_t init = c.precision > 0 ? (1 << (c.precision - 1)) : 0;
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(h) * out_w > 65536)
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * src_stride;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = &c.k[static_cast<size_t>(x) * c.ksize];
      const uint8_t* p = row + static_cast<size_t>(c.first[x]) * 3;
      int32_t r = init, g = init, b = init;
      for (int j = 0; j < c.size[x]; ++j) {
        r += p[3 * j + 0] * k[j];
        g += p[3 * j + 1] * k[j];
        b += p[3 * j + 2] * k[j];
      }
      out[3 * x + 0] = clamp_shift(r, c.precision);
      out[3 * x + 1] = clamp_shift(g, c.precision);
      out[3 * x + 2] = clamp_shift(b, c.precision);
    }
  }
}

// src: rows of `row_bytes` bytes (row stride src_stride) -> out_h rows (packed).
void resample_vertical(const uint8_t* src, int src_stride, int row_bytes, int out_h, const AxisCoeffs& c,
                       uint8_t* dst) {
  const int32_t init = c.precision > 0 ? (1 << (c.precision - 1)) : 0;
#pragma omp parallel if (static_cast<int64_t>(out_h) * row_bytes > 196608)
  {
    std::vector<int32_t> acc(row_bytes);
#pragma omp for schedule(static)
    for (int y = 0; y < out_h; ++y) {
      std::fill(acc.begin(), acc.end(), init);
      const int32_t* k = &c.k[static_cast<size_t>(y) * c.ksize];
      for (int j = 0; j < c.size[y]; ++j) {  // row by row keeps the inner loop contiguous
        const uint8_t* row = src + static_cast<size_t>(c.first[y] + j) * src_stride;
        const int32_t kj = k[j];
        for (int i = 0; i < row_bytes; ++i) acc[i] += row[i] * kj;
      }
      uint8_t* out = dst + static_cast<size_t>(y) * row_bytes;
      for (int i = 0; i < row_bytes; ++i) out[i] = clamp_shift(acc[i], c.precision);
    }
  }
}

}  // namespace

std::vector<uint8_t> resize_rgb(const uint8_t* src, int src_w, int src_h, int src_stride, int out_w, int out_h,
                                ResizeFilter filter) {
  check(src_w > 0 && src_h > 0 && out_w > 0 && out_h > 0, "resize_rgb: sizes must be positive (", src_w, "x",
        src_h, " -> ", out_w, "x", out_h, ")");
  check(src_stride >= src_w * 3, "resize_rgb: row stride ", src_stride, " is shorter than a row of ", src_w,
        " RGB pixels");
  const bool need_h = out_w != src_w;
  const bool need_v = out_h != src_h;
  std::vector<uint8_t> out(static_cast<size_t>(out_w) * out_h * 3);
  if (!need_h && !need_v) {  // both references return the input unchanged
    for (int y = 0; y < src_h; ++y) {
      std::copy_n(src + static_cast<size_t>(y) * src_stride, static_cast<size_t>(src_w) * 3,
                  out.data() + static_cast<size_t>(y) * src_w * 3);
    }
    return out;
  }
  if (need_h && !need_v) {
    resample_horizontal(src, src_h, src_stride, out_w, compute_coeffs(src_w, out_w, filter), out.data());
    return out;
  }
  if (!need_h) {
    resample_vertical(src, src_stride, src_w * 3, out_h, compute_coeffs(src_h, out_h, filter), out.data());
    return out;
  }
  // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height loses more
  // than twice as many pixels as the width; the 8-bit intermediate makes the order visible in
  // the result. Pillow 12 and older, and ATen, always go horizontal first.
  if (filter == ResizeFilter::kPilBilinear && out_h < src_h &&
      2 * (static_cast<int64_t>(src_w) - out_w) < static_cast<int64_t>(src_h) - out_h) {
    std::vector<uint8_t> tmp(static_cast<size_t>(src_w) * out_h * 3);
    resample_vertical(src, src_stride, src_w * 3, out_h, compute_coeffs(src_h, out_h, filter), tmp.data());
    resample_horizontal(tmp.data(), out_h, src_w * 3, out_w, compute_coeffs(src_w, out_w, filter), out.data());
    return out;
  }
  // Horizontal first over every input row (the references skip rows the vertical pass never
  // reads; the values of the rows it does read are the same), 8-bit intermediate, then vertical.
  std::vector<uint8_t> tmp(static_cast<size_t>(out_w) * src_h * 3);
  resample_horizontal(src, src_h, src_stride, out_w, compute_coeffs(src_w, out_w, filter), tmp.data());
  resample_vertical(tmp.data(), out_w * 3, out_w * 3, out_h, compute_coeffs(src_h, out_h, filter), out.data());
  return out;
}

}  // namespace t5g
