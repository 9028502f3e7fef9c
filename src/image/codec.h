// Internal interface between the format dispatcher (decode.cc) and the per-format decoders
// (codec_*.cc). Each decoder validates its input completely, checks the declared size against
// DecodeOptions::max_pixels before allocating pixel memory, and reports every problem as a
// t5g::Error that names the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace t5g::image_internal {

struct Decoded {
  RgbImage image;
  std::vector<uint8_t> exif;  // the TIFF-structured EXIF block ("II*\0" / "MM\0*" ...), if any
};

// Each decoder is given the whole encoded file. `want_exif` asks for the EXIF block to be kept.
Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                    bool want_exif);
Decoded decode_png(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                   bool want_exif);
Decoded decode_webp(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                    bool want_exif);
Decoded decode_gif(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options);
Decoded decode_bmp(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options);

// Throws unless 0 < width, 0 < height and width * height <= options.max_pixels (and both fit an
// int). Call it with the dimensions the file declares, before allocating anything for them.
void check_image_size(int64_t width, int64_t height, const std::string& name, const char* format,
                      const DecodeOptions& options);

// Throws "<name>: invalid <format> image: <what>".
[[noreturn]] void bad_image(const std::string& name, const char* format, const std::string& what);

// A 256-entry RGB palette. Entries a file does not supply are black, as in Pillow 13 (the
// reference; Pillow 9 filled them with the grey ramp). Files whose palette is exactly the grey
// ramp are read by Pillow as greyscale ("L"), where every index is its own grey level: use
// fill_grey_ramp() for those.
struct Palette {
  uint8_t rgb[256][3] = {};
  void fill_grey_ramp() {
    for (int i = 0; i < 256; ++i) rgb[i][0] = rgb[i][1] = rgb[i][2] = static_cast<uint8_t>(i);
  }
};

}  // namespace t5g::image_internal
