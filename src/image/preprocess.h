// Gemma 3 / T5Gemma 2 image preprocessing (spec §5.4), equal to transformers' Gemma3ImageProcessor:
// optional pan-and-scan crops, resize to image_size x image_size ignoring the aspect ratio, then
// rescale and normalise into float CHW planes. The float arithmetic follows each backend:
//   kTorchvisionBilinear: rescale and normalise are fused as torchvision's processor fuses them,
//     out = (float(p) - mean*(1/rescale)) / (std*(1/rescale)) in fp32;
//   kPilBilinear: out = (fp32(p * rescale in fp64) - mean) / std in fp32, as the numpy path does.
#pragma once
#include <vector>

#include "image/image.h"
#include "image/resize.h"

namespace t5g {

struct PreprocessOptions {
  int image_size = 896;                       // vision_config.image_size
  float mean[3] = {0.5f, 0.5f, 0.5f};         // image_mean
  float std[3] = {0.5f, 0.5f, 0.5f};          // image_std
  double rescale = 1.0 / 255.0;               // rescale_factor (a Python float: keep it double)
  ResizeFilter filter = ResizeFilter::kTorchvisionBilinear;
  bool pan_and_scan = false;                  // do_pan_and_scan
  int pan_and_scan_min_crop_size = 256;
  int pan_and_scan_max_num_crops = 4;
  double pan_and_scan_min_ratio = 1.2;        // compared with a double ratio, as Python does
};

// A crop rectangle in source pixels; it may be narrower than its nominal size at the right or
// bottom edge (numpy/torch slicing stops at the image border).
struct CropBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// The pan-and-scan crops the reference cuts from a width x height image (possibly none), in its
// order: row-major over the crop grid. Independent of options.pan_and_scan.
std::vector<CropBox> pan_and_scan_crops(int width, int height, const PreprocessOptions& options);

// One image -> [3, S, S] floats (S = options.image_size), channel-major. Ignores pan_and_scan.
std::vector<float> preprocess(const RgbImage& image, const PreprocessOptions& options);

// The original image first, then its pan-and-scan crops when options.pan_and_scan is set; each
// [3, S, S]. Without pan_and_scan this is {preprocess(image, options)}.
std::vector<std::vector<float>> preprocess_with_crops(const RgbImage& image, const PreprocessOptions& options);

}  // namespace t5g
