#include "image/exif.h"

#include <cstring>
#include <utility>

namespace t5g {

int exif_orientation(const uint8_t* data, size_t size) {
  if (data == nullptr) return 1;
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  bool little;
  if (data[0] == 'I' && data[1] == 'I') {
    little = true;
  } else if (data[0] == 'M' && data[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t off) -> uint32_t {
    return little ? (data[off] | (data[off + 1] << 8)) : ((data[off] << 8) | data[off + 1]);
  };
  auto u32 = [&](size_t off) -> uint32_t {
    return little ? (u16(off) | (u16(off + 2) << 16)) : ((u16(off) << 16) | u16(off + 2));
  };
  if (u16(2) != 42) return 1;
  const uint32_t ifd = u32(4);
  if (ifd > size - 2) return 1;
  const uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = static_cast<size_t>(ifd) + 2 + static_cast<size_t>(i) * 12;
    if (e + 12 > size) return 1;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2);
    uint32_t value = 0;
    if (type == 3) {  // SHORT: stored left-justified in the 4-byte value field
      value = u16(e + 8);
    } else if (type == 4) {  // LONG, tolerated
      value = u32(e + 8);
    } else {
      return 1;
    }
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

RgbImage apply_exif_orientation(const RgbImage& image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const int w = image.width, h = image.height;
  const bool swap = orientation >= 5;
  RgbImage out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.pixels.resize(image.pixels.size());
  for (int oy = 0; oy < out.height; ++oy) {
    for (int ox = 0; ox < out.width; ++ox) {
      int ix = ox, iy = oy;
      switch (orientation) {
        case 2: ix = w - 1 - ox; break;                         // FLIP_LEFT_RIGHT
        case 3: ix = w - 1 - ox; iy = h - 1 - oy; break;        // ROTATE_180
        case 4: iy = h - 1 - oy; break;                         // FLIP_TOP_BOTTOM
        case 5: ix = oy; iy = ox; break;                        // TRANSPOSE
        case 6: ix = oy; iy = h - 1 - ox; break;                // ROTATE_270 (90 clockwise)
        case 7: ix = w - 1 - oy; iy = h - 1 - ox; break;        // TRANSVERSE
        case 8: ix = w - 1 - oy; iy = ox; break;                // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* s = &image.pixels[(static_cast<size_t>(iy) * w + ix) * 3];
      uint8_t* d = &out.pixels[(static_cast<size_t>(oy) * out.width + ox) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

}  // namespace t5g
