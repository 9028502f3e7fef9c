#include "image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "util/error.h"

namespace t5g {
namespace {

void check_options(const PreprocessOptions& o) {
  check(o.image_size > 0, "preprocess: image_size must be positive, got ", o.image_size);
  check(o.image_size <= 16384, "preprocess: image_size ", o.image_size, " is implausibly large");
  for (int c = 0; c < 3; ++c) {
    check(std::isfinite(o.mean[c]) && std::isfinite(o.std[c]) && o.std[c] != 0.0f,
          "preprocess: image_mean/image_std must be finite and std non-zero (channel ", c, ")");
  }
  check(std::isfinite(o.rescale) && o.rescale != 0.0, "preprocess: rescale_factor must be finite and non-zero");
}

void check_image(const RgbImage& im) {
  check(im.width > 0 && im.height > 0, "preprocess: empty image (", im.width, "x", im.height, ")");
  check(im.pixels.size() == static_cast<size_t>(im.width) * im.height * 3, "preprocess: image of ", im.width, "x",
        im.height, " holds ", im.pixels.size(), " bytes, expected width*height*3");
}

// Every output value depends only on (channel, 8-bit input), so the whole rescale+normalise is a
// 3 x 256 table computed with the backend's exact float operations.
struct NormalizeTable {
  float v[3][256];
};

NormalizeTable make_table(const PreprocessOptions& o) {
  NormalizeTable t;
  if (o.filter == ResizeFilter::kTorchvisionBilinear) {
    // TorchvisionBackend fuses the two steps: mean and std (fp32 tensors) are multiplied by the
    // Python float 1/rescale_factor, which the fp32 multiply first rounds to fp32; then
    // tvF.normalize computes (x - mean) / std on the fp32 image.
    const float inv = static_cast<float>(1.0 / o.rescale);
    for (int c = 0; c < 3; ++c) {
      const float m = o.mean[c] * inv;
      const float s = o.std[c] * inv;
      for (int p = 0; p < 256; ++p) t.v[c][p] = (static_cast<float>(p) - m) / s;
    }
  } else {
    // PilBackend: rescale in float64 then cast to float32, then (x - mean) / std in float32.
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 256; ++p) {
        const float x = static_cast<float>(static_cast<double>(p) * o.rescale);
        t.v[c][p] = (x - o.mean[c]) / o.std[c];
      }
    }
  }
  return t;
}

// Resizes the (sub)image at (x, y, w, h) of `im` to S x S and writes CHW floats.
std::vector<float> process_region(const RgbImage& im, const CropBox& box, const PreprocessOptions& o,
                                  const NormalizeTable& table) {
  const int s = o.image_size;
  const size_t stride = static_cast<size_t>(im.width) * 3;
  const uint8_t* src = im.pixels.data() + static_cast<size_t>(box.y) * stride + static_cast<size_t>(box.x) * 3;
  const std::vector<uint8_t> resized = resize_rgb(src, box.width, box.height, static_cast<int>(stride), s, s, o.filter);
  const size_t plane = static_cast<size_t>(s) * s;
  std::vector<float> out(plane * 3);
  for (size_t i = 0; i < plane; ++i) {
    out[i] = table.v[0][resized[3 * i + 0]];
    out[plane + i] = table.v[1][resized[3 * i + 1]];
    out[2 * plane + i] = table.v[2][resized[3 * i + 2]];
  }
  return out;
}

}  // namespace

std::vector<CropBox> pan_and_scan_crops(int width, int height, const PreprocessOptions& o) {
  check(width > 0 && height > 0, "pan_and_scan: empty image (", width, "x", height, ")");
  check(o.pan_and_scan_min_crop_size > 0, "pan_and_scan: min_crop_size must be positive, got ",
        o.pan_and_scan_min_crop_size);
  check(o.pan_and_scan_max_num_crops > 0, "pan_and_scan: max_num_crops must be positive, got ",
        o.pan_and_scan_max_num_crops);
  // Transcribed from Gemma3ImageProcessor.pan_and_scan; Python's `/` is a double division.
  const double w = width, h = height, min_crop = o.pan_and_scan_min_crop_size;
  int n_w = 1, n_h = 1;
  if (width >= height) {  // square or landscape
    if (w / h < o.pan_and_scan_min_ratio) return {};
    n_w = static_cast<int>(std::floor(w / h + 0.5));  // round half up
    n_w = std::min(static_cast<int>(std::floor(w / min_crop)), n_w);
    n_w = std::max(2, n_w);
    n_w = std::min(o.pan_and_scan_max_num_crops, n_w);
  } else {  // portrait
    if (h / w < o.pan_and_scan_min_ratio) return {};
    n_h = static_cast<int>(std::floor(h / w + 0.5));
    n_h = std::min(static_cast<int>(std::floor(h / min_crop)), n_h);
    n_h = std::max(2, n_h);
    n_h = std::min(o.pan_and_scan_max_num_crops, n_h);
  }
  const int crop_w = static_cast<int>(std::ceil(w / n_w));
  const int crop_h = static_cast<int>(std::ceil(h / n_h));
  if (std::min(crop_w, crop_h) < o.pan_and_scan_min_crop_size) return {};
  std::vector<CropBox> boxes;
  for (int i = 0; i < n_h; ++i) {
    for (int j = 0; j < n_w; ++j) {
      CropBox b;
      b.x = crop_w * j;
      b.y = crop_h * i;
      b.width = std::min(crop_w, width - b.x);  // slicing stops at the border
      b.height = std::min(crop_h, height - b.y);
      // Only reachable with non-default options; the reference fails on the empty slice too.
      check(b.width > 0 && b.height > 0, "pan_and_scan: crop ", boxes.size(), " of a ", width, "x", height,
            " image is empty (", n_w, "x", n_h, " crops of ", crop_w, "x", crop_h, ")");
      boxes.push_back(b);
    }
  }
  return boxes;
}

std::vector<float> preprocess(const RgbImage& image, const PreprocessOptions& options) {
  check_options(options);
  check_image(image);
  const NormalizeTable table = make_table(options);
  return process_region(image, CropBox{0, 0, image.width, image.height}, options, table);
}

std::vector<std::vector<float>> preprocess_with_crops(const RgbImage& image, const PreprocessOptions& options) {
  check_options(options);
  check_image(image);
  const NormalizeTable table = make_table(options);
  std::vector<std::vector<float>> out;
  out.push_back(process_region(image, CropBox{0, 0, image.width, image.height}, options, table));
  if (options.pan_and_scan) {
    for (const CropBox& b : pan_and_scan_crops(image.width, image.height, options)) {
      out.push_back(process_region(image, b, options, table));
    }
  }
  return out;
}

}  // namespace t5g
