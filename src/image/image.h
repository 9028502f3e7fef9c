// Image decoding: JPEG, PNG, WebP, GIF (first frame) and BMP, from a file or a memory buffer, to
// 8-bit RGB exactly as Pillow's Image.open(...).convert("RGB") would give it, because the reference
// processor (transformers' Gemma3 image processor) is fed PIL images:
//   * alpha is dropped, not composited (PIL's convert("RGB") does not blend);
//   * grey is replicated to R=G=B; palette images go through their palette;
//   * 16-bit PNG: RGB(A) and grey+alpha keep the high byte of each sample; 16-bit grey is clipped
//     to 255 (PIL's "I;16" -> "RGB" conversion clips, it does not scale);
//   * CMYK JPEG is read as Adobe-inverted CMYK and converted with PIL's cmyk2rgb.
// The format is sniffed from magic bytes, never from the file name. Every failure (unknown format,
// corrupt or truncated data, zero-sized or oversized image) is a t5g::Error naming the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "t5g/error.h"  // every failure is a t5g::Error

namespace t5g {

// Row-major, interleaved RGB (HWC), 3 bytes per pixel, no row padding.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

struct DecodeOptions {
  // Rotate/flip by the EXIF Orientation tag (JPEG APP1, PNG eXIf, WebP EXIF) as PIL's
  // ImageOps.exif_transpose does. Off by default: the reference processor does not do it.
  bool apply_exif_orientation = false;
  // Refuse images with more pixels than this before allocating anything for them (decompression
  // bombs). The default is PIL's Image.MAX_IMAGE_PIXELS.
  int64_t max_pixels = 178956970;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kGif, kBmp };

// The format named by the first bytes of `data` (kUnknown when none matches).
ImageFormat sniff_image_format(const uint8_t* data, size_t size);
const char* image_format_name(ImageFormat format);

// Decodes the file at `path` (memory-mapped). Errors name the path.
RgbImage decode_image_file(const std::string& path, const DecodeOptions& options = {});

// Decodes an encoded image held in [data, data + size). `name_for_errors` names it in errors.
RgbImage decode_image_memory(const uint8_t* data, size_t size, const std::string& name_for_errors,
                             const DecodeOptions& options = {});

}  // namespace t5g
