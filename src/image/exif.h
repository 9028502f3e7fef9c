// EXIF Orientation: reading the tag from a TIFF-structured EXIF block and applying it to pixels
// the way PIL's ImageOps.exif_transpose does.
#pragma once
#include <cstddef>
#include <cstdint>

#include "image/image.h"

namespace t5g {

// The Orientation tag (0x0112) of IFD0 in a TIFF-structured block ("II*\0" or "MM\0*" header;
// a leading "Exif\0\0" is skipped). Returns 1 (normal) when the block is malformed, the tag is
// absent, or its value is outside 1..8: a broken EXIF block never fails a decode.
int exif_orientation(const uint8_t* data, size_t size);

// Returns `image` transformed for orientation 1..8 (2: mirror, 3: rotate 180, 4: flip,
// 5: transpose, 6: rotate 90 clockwise, 7: transverse, 8: rotate 90 counter-clockwise).
RgbImage apply_exif_orientation(const RgbImage& image, int orientation);

}  // namespace t5g
