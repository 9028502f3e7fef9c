// GIF, first frame only, through giflib's low-level record API (never DGifSlurp, which reads every
// frame). Reproduces what Pillow gives for frame 0 after convert("RGB"):
//   * the image is the logical screen, enlarged when the frame extends past it;
//   * pixels outside the frame hold the frame's transparent index when it has one, else index 0;
//   * indices go through the frame's local colour table, else the global one; indices past the
//     table are black, except without a table or with a grey-ramp table (Pillow's "L" mode),
//     where index i is grey level i; transparency is dropped, not blended.
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "image/codec.h"

namespace t5g::image_internal {
namespace {

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

int on_read(GifFileType* gif, GifByteType* out, int n) {
  auto* r = static_cast<Reader*>(gif->UserData);
  if (n <= 0) return 0;
  const size_t k = std::min(static_cast<size_t>(n), r->size - r->pos);
  std::memcpy(out, r->data + r->pos, k);
  r->pos += k;
  return static_cast<int>(k);  // a short read makes giflib report D_GIF_ERR_READ_FAILED
}

struct GifCloser {
  void operator()(GifFileType* g) const {
    int err = 0;
    DGifCloseFile(g, &err);
  }
};

[[noreturn]] void gif_fail(const std::string& name, int code, const char* when) {
  const char* why = GifErrorString(code);
  std::string what = std::string(when) + ": " + (why != nullptr ? why : "giflib error");
  if (code == D_GIF_ERR_READ_FAILED) what += " (truncated data?)";
  bad_image(name, "GIF", what);
}

}  // namespace

Decoded decode_gif(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options) {
  Reader reader{data, size, 0};
  int err = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, on_read, &err));
  if (!gif) gif_fail(name, err, "reading the header");

  int transparency = -1;  // from the last Graphic Control Extension before the first image
  for (;;) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) gif_fail(name, gif->Error, "reading a record");
    if (type == TERMINATE_RECORD_TYPE) bad_image(name, "GIF", "the file has no image frames");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) gif_fail(name, gif->Error, "reading an extension");
      if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4) {
        transparency = (ext[1] & 1) ? ext[4] : -1;
      }
      while (ext != nullptr) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) gif_fail(name, gif->Error, "reading an extension");
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;

    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_fail(name, gif->Error, "reading the image descriptor");
    const GifImageDesc& desc = gif->Image;
    const int64_t x0 = desc.Left, y0 = desc.Top, fw = desc.Width, fh = desc.Height;
    if (fw < 0 || fh < 0 || x0 < 0 || y0 < 0) bad_image(name, "GIF", "negative frame geometry");
    const int64_t width = std::max<int64_t>(gif->SWidth, x0 + fw);  // PIL grows the image to fit
    const int64_t height = std::max<int64_t>(gif->SHeight, y0 + fh);
    check_image_size(width, height, name, "GIF", options);

    // Indices first (the canvas of frame 0), then the palette lookup.
    const size_t n = static_cast<size_t>(width) * height;
    std::vector<uint8_t> index(n, static_cast<uint8_t>(transparency >= 0 ? transparency : 0));
    std::vector<GifPixelType> line(static_cast<size_t>(fw) + 1);
    auto read_row = [&](int64_t fy) {
      if (DGifGetLine(gif.get(), line.data(), static_cast<int>(fw)) == GIF_ERROR) {
        gif_fail(name, gif->Error, "decoding the image data");
      }
      std::copy_n(line.data(), fw, &index[static_cast<size_t>(y0 + fy) * width + x0]);
    };
    if (fw > 0 && fh > 0) {
      if (desc.Interlace) {  // rows arrive in four passes
        static constexpr int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
        for (int p = 0; p < 4; ++p) {
          for (int64_t fy = kStart[p]; fy < fh; fy += kStep[p]) read_row(fy);
        }
      } else {
        for (int64_t fy = 0; fy < fh; ++fy) read_row(fy);
      }
    }

    // No colour table, or one that is exactly the grey ramp: Pillow reads the frame as "L".
    Palette pal;
    const ColorMapObject* map = desc.ColorMap != nullptr ? desc.ColorMap : gif->SColorMap;
    bool grey_ramp = true;
    if (map != nullptr && map->Colors != nullptr) {
      for (int i = 0; i < map->ColorCount && i < 256; ++i) {
        const GifColorType& c = map->Colors[i];
        pal.rgb[i][0] = c.Red;
        pal.rgb[i][1] = c.Green;
        pal.rgb[i][2] = c.Blue;
        grey_ramp = grey_ramp && c.Red == i && c.Green == i && c.Blue == i;
      }
    }
    if (grey_ramp) pal.fill_grey_ramp();
    Decoded out;
    out.image.width = static_cast<int>(width);
    out.image.height = static_cast<int>(height);
    out.image.pixels.resize(n * 3);
    for (size_t i = 0; i < n; ++i) std::memcpy(&out.image.pixels[3 * i], pal.rgb[index[i]], 3);
    return out;
  }
}

}  // namespace t5g::image_internal
