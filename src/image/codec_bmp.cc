// BMP, written here (no Debian library fits): uncompressed 1/4/8-bit palette images and 16/24/32-bit
// direct colour, BI_RGB or BI_BITFIELDS/BI_ALPHABITFIELDS masks, bottom-up or top-down (negative
// height), with the header variants Pillow reads (OS/2 core 12 bytes; Windows 40/52/56/64/108/124).
// Matches Pillow's BmpImagePlugin: 16-bit BI_RGB is 5-5-5; a channel of n bits becomes
// v * 255 / (2^n - 1) (integer division, as Pillow's BGR;15/BGR;16 unpackers); 32-bit BI_RGB and
// alpha masks are ignored (alpha dropped); palette indices past the palette read as black
// (as grey levels when the palette is the grey ramp, which Pillow reads as mode "L").
// Every offset and length comes from the file, so each is checked against the buffer before use.
// RLE4/RLE8/JPEG/PNG-compressed BMPs are rejected with a clear error.
#include <cstring>
#include <string>

#include "image/codec.h"

namespace t5g::image_internal {
namespace {

constexpr uint32_t kBiRgb = 0, kBiRle8 = 1, kBiRle4 = 2, kBiBitfields = 3, kBiJpeg = 4, kBiPng = 5,
                   kBiAlphaBitfields = 6;

uint32_t le16(const uint8_t* p) { return p[0] | (p[1] << 8); }
uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// One colour channel described by a bit mask: value = (pixel & mask) >> shift, scaled to 8 bits.
struct Channel {
  uint32_t mask = 0;
  int shift = 0;
  uint32_t max = 0;  // mask >> shift

  static Channel from_mask(uint32_t mask, const std::string& name) {
    Channel c;
    c.mask = mask;
    if (mask == 0) return c;
    while (((mask >> c.shift) & 1u) == 0) ++c.shift;
    c.max = mask >> c.shift;
    if ((c.max & (c.max + 1)) != 0) bad_image(name, "BMP", "non-contiguous BI_BITFIELDS mask");
    return c;
  }
  uint8_t get(uint32_t pixel) const {
    if (max == 0) return 0;
    const uint64_t v = (pixel & mask) >> shift;
    return static_cast<uint8_t>(v * 255 / max);
  }
};

}  // namespace

Decoded decode_bmp(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options) {
  auto need = [&](uint64_t end, const char* what) {
    if (end > size) bad_image(name, "BMP", std::string("truncated data (") + what + " runs past the end of the file)");
  };
  need(14 + 4, "file header");
  const uint32_t pixel_offset = le32(data + 10);
  const uint32_t header_size = le32(data + 14);
  const uint8_t* h = data + 14;

  int64_t width = 0, height = 0;
  uint32_t bits = 0, compression = kBiRgb, colors = 0;
  int palette_entry = 4;  // bytes per palette entry: BGRX, or BGR for OS/2 core headers
  bool top_down = false;
  uint32_t masks[3] = {0, 0, 0};
  uint64_t after_header = 14 + static_cast<uint64_t>(header_size);
  if (header_size == 12) {  // OS/2 1.x BITMAPCOREHEADER
    need(after_header, "BITMAPCOREHEADER");
    width = le16(h + 4);
    height = le16(h + 6);
    bits = le16(h + 10);
    palette_entry = 3;
  } else if (header_size == 40 || header_size == 52 || header_size == 56 || header_size == 64 || header_size == 108 ||
             header_size == 124) {
    need(after_header, "BITMAPINFOHEADER");
    width = static_cast<int32_t>(le32(h + 4));
    const int32_t raw_height = static_cast<int32_t>(le32(h + 8));
    top_down = raw_height < 0;
    height = top_down ? -static_cast<int64_t>(raw_height) : raw_height;
    bits = le16(h + 14);
    compression = le32(h + 16);
    colors = le32(h + 32);
    if (compression == kBiBitfields || compression == kBiAlphaBitfields) {
      if (header_size >= 52) {  // masks live inside V2+ headers
        for (int i = 0; i < 3; ++i) masks[i] = le32(h + 40 + 4 * i);
      } else {  // a 40-byte header is followed by the masks (plus alpha for BI_ALPHABITFIELDS)
        const uint64_t n = compression == kBiAlphaBitfields ? 16 : 12;
        need(after_header + n, "BI_BITFIELDS masks");
        for (int i = 0; i < 3; ++i) masks[i] = le32(data + after_header + 4 * i);
        after_header += n;
      }
    }
  } else {
    bad_image(name, "BMP", "unsupported header size " + std::to_string(header_size));
  }

  if (compression == kBiRle8 || compression == kBiRle4) {
    bad_image(name, "BMP", "RLE-compressed BMP is not supported");
  }
  if (compression == kBiJpeg || compression == kBiPng) bad_image(name, "BMP", "embedded JPEG/PNG BMP is not supported");
  if (compression != kBiRgb && compression != kBiBitfields && compression != kBiAlphaBitfields) {
    bad_image(name, "BMP", "unknown compression " + std::to_string(compression));
  }
  const bool bitfields = compression != kBiRgb;
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32) {
    bad_image(name, "BMP", "unsupported bit depth " + std::to_string(bits));
  }
  if (bitfields && bits != 16 && bits != 24 && bits != 32) bad_image(name, "BMP", "BI_BITFIELDS needs 16, 24 or 32 bits");
  check_image_size(width, height, name, "BMP", options);

  // Palette (1/4/8 bit): `colors` entries (0 means 2^bits), right after the header and masks.
  Palette pal;
  if (bits <= 8) {
    if (colors == 0) colors = 1u << bits;
    if (colors > 65536) bad_image(name, "BMP", "palette of " + std::to_string(colors) + " colours");
    const uint32_t used = colors < 256 ? colors : 256;
    need(after_header + static_cast<uint64_t>(used) * palette_entry, "palette");
    // Pillow drops a palette that is the grey ramp (black/white for 2 colours) and reads the
    // image as "L"/"1": then every index is its own grey level, even past the palette.
    bool grey = colors <= 256;
    for (uint32_t i = 0; i < used; ++i) {
      const uint8_t* e = data + after_header + static_cast<uint64_t>(i) * palette_entry;
      pal.rgb[i][0] = e[2];
      pal.rgb[i][1] = e[1];
      pal.rgb[i][2] = e[0];
      const uint32_t want = colors == 2 ? (i == 0 ? 0 : 255) : i;
      grey = grey && e[0] == want && e[1] == want && e[2] == want;
    }
    if (grey && colors != 2) pal.fill_grey_ramp();
  }

  // Direct colour layout.
  Channel ch[3];
  if (bits >= 16) {
    if (!bitfields) {
      if (bits == 16) {
        masks[0] = 0x7C00, masks[1] = 0x03E0, masks[2] = 0x001F;  // 5-5-5
      } else {
        masks[0] = 0xFF0000, masks[1] = 0xFF00, masks[2] = 0xFF;
      }
    } else if (bits == 32 && masks[0] == 0 && masks[1] == 0 && masks[2] == 0) {
      masks[0] = 0xFF0000, masks[1] = 0xFF00, masks[2] = 0xFF;  // Pillow reads all-zero masks as BGRA
    }
    if (bits == 16 && ((masks[0] | masks[1] | masks[2]) >> 16) != 0) {
      bad_image(name, "BMP", "16-bit BI_BITFIELDS mask wider than 16 bits");
    }
    for (int i = 0; i < 3; ++i) ch[i] = Channel::from_mask(masks[i], name);
  }

  const uint64_t stride = ((static_cast<uint64_t>(width) * bits + 31) / 32) * 4;
  const uint64_t row_bytes = (static_cast<uint64_t>(width) * bits + 7) / 8;
  uint64_t start = pixel_offset;
  if (pixel_offset == 0) {  // Pillow: no offset given, the pixels follow the palette
    start = after_header + (bits <= 8 ? static_cast<uint64_t>(palette_entry) * colors : 0);
  } else if (pixel_offset == 14 + static_cast<uint64_t>(header_size) && bits <= 8) {
    start += 4ull * colors;  // Pillow's fix-up for writers that left the palette out of the offset
  }
  if (start < 14 + static_cast<uint64_t>(header_size)) {
    bad_image(name, "BMP", "pixel data offset " + std::to_string(pixel_offset) + " points into the header");
  }
  // The last row may omit its padding.
  need(start + stride * static_cast<uint64_t>(height - 1) + row_bytes, "pixel data");

  Decoded out;
  RgbImage& im = out.image;
  im.width = static_cast<int>(width);
  im.height = static_cast<int>(height);
  im.pixels.resize(static_cast<size_t>(width) * height * 3);
  const int bytes_pp = static_cast<int>(bits / 8);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t file_row = top_down ? y : height - 1 - y;
    const uint8_t* s = data + start + stride * static_cast<uint64_t>(file_row);
    uint8_t* d = &im.pixels[static_cast<size_t>(y) * width * 3];
    if (bits <= 8) {
      const int per_byte = 8 / static_cast<int>(bits);
      const uint32_t mask = (1u << bits) - 1;
      for (int64_t x = 0; x < width; ++x) {
        const int shift = static_cast<int>(8 - bits - (x % per_byte) * bits);
        const uint8_t idx = static_cast<uint8_t>((s[x / per_byte] >> shift) & mask);
        std::memcpy(d + 3 * x, pal.rgb[idx], 3);
      }
    } else {
      for (int64_t x = 0; x < width; ++x) {
        const uint8_t* p = s + x * bytes_pp;
        uint32_t v = p[0] | (p[1] << 8);
        if (bytes_pp >= 3) v |= p[2] << 16;
        if (bytes_pp == 4) v |= static_cast<uint32_t>(p[3]) << 24;
        d[3 * x + 0] = ch[0].get(v);
        d[3 * x + 1] = ch[1].get(v);
        d[3 * x + 2] = ch[2].get(v);
      }
    }
  }
  return out;
}

}  // namespace t5g::image_internal
