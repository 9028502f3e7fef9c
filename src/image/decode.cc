// Format sniffing and dispatch to the per-format decoders; the checks every format shares.
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>

#include "image/codec.h"
#include "image/exif.h"
#include "image/image.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g {
namespace image_internal {

void check_image_size(int64_t width, int64_t height, const std::string& name, const char* format,
                      const DecodeOptions& options) {
  if (width <= 0 || height <= 0) {
    fail(name, ": ", format, " image has no pixels (declared size ", width, "x", height, ")");
  }
  constexpr int64_t kMaxSide = std::numeric_limits<int>::max();
  // width and height are positive, so the division cannot be by zero and the product test is exact.
  if (width > kMaxSide || height > kMaxSide || width > options.max_pixels / height) {
    fail(name, ": ", format, " image declares ", width, "x", height, " pixels, more than the limit of ",
         options.max_pixels, " pixels (DecodeOptions::max_pixels; a decompression bomb or a corrupt header)");
  }
}

void bad_image(const std::string& name, const char* format, const std::string& what) {
  fail(name, ": invalid ", format, " image: ", what);
}

}  // namespace image_internal

ImageFormat sniff_image_format(const uint8_t* d, size_t n) {
  if (d == nullptr) return ImageFormat::kUnknown;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return ImageFormat::kWebp;
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return ImageFormat::kGif;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return ImageFormat::kBmp;
  return ImageFormat::kUnknown;
}

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

namespace {

// Names formats we recognise but do not decode, so the error says what the file is.
const char* other_format(const uint8_t* d, size_t n) {
  if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && std::memcmp(d + 4, "ftyp", 4) == 0) {
    if (std::memcmp(d + 8, "avif", 4) == 0 || std::memcmp(d + 8, "avis", 4) == 0) return "AVIF";
    if (std::memcmp(d + 8, "heic", 4) == 0 || std::memcmp(d + 8, "heix", 4) == 0 ||
        std::memcmp(d + 8, "mif1", 4) == 0) {
      return "HEIF/HEIC";
    }
  }
  if (n >= 4 && std::memcmp(d, "\0\0\1\0", 4) == 0) return "ICO";
  if (n >= 12 && std::memcmp(d, "\0\0\0\x0cjP  ", 8) == 0) return "JPEG 2000";
  if (n >= 4 && std::memcmp(d, "\xff\x0a", 2) == 0) return "JPEG XL";
  return nullptr;
}

std::string first_bytes_hex(const uint8_t* d, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n && i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", d[i]);
    s += buf;
  }
  return s;
}

}  // namespace

RgbImage decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                             const DecodeOptions& options) {
  using namespace image_internal;
  check(options.max_pixels > 0, name, ": DecodeOptions::max_pixels must be positive, got ", options.max_pixels);
  if (data == nullptr || size == 0) fail(name, ": empty input (0 bytes), not an image");
  const ImageFormat format = sniff_image_format(data, size);
  if (format == ImageFormat::kUnknown) {
    if (const char* other = other_format(data, size)) {
      fail(name, ": ", other, " images are not supported (supported: JPEG, PNG, WebP, GIF, BMP)");
    }
    fail(name, ": not a supported image (first bytes ", first_bytes_hex(data, size),
         "; supported: JPEG, PNG, WebP, GIF, BMP)");
  }
  const bool want_exif = options.apply_exif_orientation;
  Decoded d;
  try {
    switch (format) {
      case ImageFormat::kJpeg: d = decode_jpeg(data, size, name, options, want_exif); break;
      case ImageFormat::kPng: d = decode_png(data, size, name, options, want_exif); break;
      case ImageFormat::kWebp: d = decode_webp(data, size, name, options, want_exif); break;
      case ImageFormat::kGif: d = decode_gif(data, size, name, options); break;
      case ImageFormat::kBmp: d = decode_bmp(data, size, name, options); break;
      case ImageFormat::kUnknown: break;
    }
  } catch (const std::bad_alloc&) {
    fail(name, ": out of memory decoding the ", image_format_name(format), " image");
  }
  if (want_exif && !d.exif.empty()) {
    const int orientation = exif_orientation(d.exif.data(), d.exif.size());
    if (orientation != 1) d.image = apply_exif_orientation(d.image, orientation);
  }
  return std::move(d.image);
}

RgbImage decode_image_file(const std::string& path, const DecodeOptions& options) {
  const MappedFile file(path);  // throws t5g::Error naming the path
  return decode_image_memory(file.data(), file.size(), path, options);
}

}  // namespace t5g
