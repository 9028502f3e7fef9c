// WebP (lossy, lossless, with alpha, animated) through libwebp. Still images decode straight to
// RGB; alpha is dropped without blending, as PIL's convert("RGB") drops it. Animated files give
// their first frame composited on the canvas the way libwebp's WebPAnimDecoder (which Pillow
// uses) composites it: on transparent black, so uncovered canvas is black.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>
#include <memory>

#include "image/codec.h"

namespace t5g::image_internal {
namespace {

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
  }
  return "unknown libwebp error";
}

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// The payload of the RIFF chunk "EXIF", if present (bounds-checked walk over the chunk list).
std::vector<uint8_t> find_exif_chunk(const uint8_t* data, size_t size) {
  size_t pos = 12;  // "RIFF" <size> "WEBP"
  while (pos + 8 <= size) {
    const uint32_t len = le32(data + pos + 4);
    if (len > size - pos - 8) break;
    if (std::memcmp(data + pos, "EXIF", 4) == 0) return {data + pos + 8, data + pos + 8 + len};
    pos += 8 + static_cast<size_t>(len) + (len & 1);
  }
  return {};
}

struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

void decode_first_frame(const uint8_t* data, size_t size, const std::string& name, RgbImage& im) {
  WebPAnimDecoderOptions ao;
  if (!WebPAnimDecoderOptionsInit(&ao)) bad_image(name, "WebP", "libwebp version mismatch");
  ao.color_mode = MODE_RGBA;
  ao.use_threads = 0;
  WebPData wd{data, size};
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> dec(WebPAnimDecoderNew(&wd, &ao));
  if (!dec) bad_image(name, "WebP", "corrupt or truncated animation");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(dec.get(), &info)) bad_image(name, "WebP", "cannot read the animation header");
  if (static_cast<int>(info.canvas_width) != im.width || static_cast<int>(info.canvas_height) != im.height) {
    bad_image(name, "WebP", "animation canvas size disagrees with the file header");
  }
  if (info.frame_count == 0) bad_image(name, "WebP", "animation has no frames");
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &rgba, &timestamp) || rgba == nullptr) {
    bad_image(name, "WebP", "cannot decode the first animation frame (corrupt or truncated)");
  }
  const size_t n = static_cast<size_t>(im.width) * im.height;
  for (size_t i = 0; i < n; ++i) {
    im.pixels[3 * i + 0] = rgba[4 * i + 0];
    im.pixels[3 * i + 1] = rgba[4 * i + 1];
    im.pixels[3 * i + 2] = rgba[4 * i + 2];
  }
}

}  // namespace

Decoded decode_webp(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                    bool want_exif) {
  WebPBitstreamFeatures f;
  const VP8StatusCode fs = WebPGetFeatures(data, size, &f);
  if (fs != VP8_STATUS_OK) bad_image(name, "WebP", status_text(fs));
  check_image_size(f.width, f.height, name, "WebP", options);  // the canvas size for animations
  Decoded out;
  RgbImage& im = out.image;
  im.width = f.width;
  im.height = f.height;
  im.pixels.resize(static_cast<size_t>(f.width) * f.height * 3);
  if (f.has_animation) {
    decode_first_frame(data, size, name, im);
  } else {
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) bad_image(name, "WebP", "libwebp version mismatch");
    config.output.colorspace = MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = im.pixels.data();
    config.output.u.RGBA.stride = f.width * 3;
    config.output.u.RGBA.size = im.pixels.size();
    const VP8StatusCode ds = WebPDecode(data, size, &config);
    WebPFreeDecBuffer(&config.output);  // releases nothing for external memory; kept for symmetry
    if (ds != VP8_STATUS_OK) bad_image(name, "WebP", status_text(ds));
    if (config.output.width != f.width || config.output.height != f.height) {
      bad_image(name, "WebP", "decoded size disagrees with the file header");
    }
  }
  if (want_exif) out.exif = find_exif_chunk(data, size);
  return out;
}

}  // namespace t5g::image_internal
