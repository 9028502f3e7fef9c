// Antialiased bilinear resize of 8-bit RGB images, bit-exact with the two reference backends:
//
//   kTorchvision: torchvision.transforms.v2.functional.resize(uint8 tensor, antialias=True) on an
//     x86 CPU with AVX2, which runs ATen's native uint8 kernel (UpSampleKernelAVXAntialias.h):
//     triangle filter whose support grows with the downscale factor, weights computed in double,
//     normalised, then quantised to int16 with a per-axis precision chosen from the largest weight.
//     (torchvision takes that path only when torch reports the "AVX2" CPU capability; where it
//     reports "AVX512" or none it resizes in fp32 and rounds, and ~18% of samples come out one
//     level different. The reference vectors were made on an AVX2 host.)
//   kPil: Pillow's Image.resize(..., BILINEAR) (libImaging/Resample.c): the same filter and
//     weights, quantised to int32 with 22 fractional bits.
//
// Both run two 1-D passes through an 8-bit intermediate image, rounding half up and clamping to
// [0, 255] after each: horizontal then vertical, except that Pillow 13 (the reference oracle's
// Pillow) goes vertical first when the height shrinks by more than twice as many pixels as the
// width (2 * (src_w - out_w) < src_h - out_h). Otherwise they differ only by the weight
// quantisation, hence by one level on some pixels.
#pragma once
#include <cstdint>
#include <vector>

namespace t5g {

enum class ResizeFilter {
  kTorchvisionBilinear,  // transformers 5 default ("fast" torchvision-backed image processor)
  kPilBilinear,          // the PIL-backed image processor (Gemma3ImageProcessorPil)
};

// Resizes `src` (HWC RGB, src_w x src_h, row stride src_stride bytes) to out_w x out_h (HWC RGB,
// packed). Throws t5g::Error on non-positive sizes.
std::vector<uint8_t> resize_rgb(const uint8_t* src, int src_w, int src_h, int src_stride, int out_w, int out_h,
                                ResizeFilter filter);

}  // namespace t5g
