// PNG through libpng, converted to RGB as PIL converts each PNG mode to "RGB":
//   grey 1/2/4/8 bit -> scaled to 8 bit and replicated; grey 16 bit ("I;16") -> clipped to 255;
//   grey+alpha, RGB, RGBA at 16 bit -> high byte of each sample (PIL's "*;16B" unpackers);
//   palette -> looked up in the PLTE entries (indices past them are black); alpha and tRNS
//   are dropped. gAMA/iCCP are ignored, as PIL ignores them.
//
// libpng reports fatal errors through png_error, which longjmps to png_jmpbuf; the setjmp is in
// run_decoder() and all state that must survive the jump lives in a heap object.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "image/codec.h"

namespace t5g::image_internal {
namespace {

struct PngJob {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {0};
  Decoded out;
  std::vector<uint8_t> rows;  // one native row, or the whole native image when interlaced

  ~PngJob() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

[[noreturn]] void on_error(png_structp png, png_const_charp msg) {
  auto* j = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(j->message, sizeof j->message, "%s", msg != nullptr ? msg : "libpng error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // PIL does not fail on what libpng warns about

void on_read(png_structp png, png_bytep out, size_t n) {
  auto* j = static_cast<PngJob*>(png_get_io_ptr(png));
  if (n > j->size - j->pos) png_error(png, "truncated data (unexpected end of file)");
  std::memcpy(out, j->data + j->pos, n);
  j->pos += n;
}

// One row of the (possibly packed-to-bytes) native format -> RGB.
void convert_row(const uint8_t* s, uint8_t* d, int w, int color_type, int depth, const Palette& pal) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
      if (depth == 16) {
        for (int x = 0; x < w; ++x) {
          const uint8_t v = s[2 * x] != 0 ? 255 : s[2 * x + 1];  // PIL I;16 -> RGB clips
          d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = v;
        }
      } else {
        for (int x = 0; x < w; ++x) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[x];
      }
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
      const int step = depth == 16 ? 4 : 2;
      for (int x = 0; x < w; ++x) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[step * x];
      break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
      const int bytes = depth == 16 ? 2 : 1;
      const int step = (color_type == PNG_COLOR_TYPE_RGB ? 3 : 4) * bytes;
      for (int x = 0; x < w; ++x) {
        d[3 * x + 0] = s[step * x];
        d[3 * x + 1] = s[step * x + bytes];
        d[3 * x + 2] = s[step * x + 2 * bytes];
      }
      break;
    }
    case PNG_COLOR_TYPE_PALETTE:
      for (int x = 0; x < w; ++x) {
        const uint8_t* c = pal.rgb[s[x]];
        d[3 * x + 0] = c[0];
        d[3 * x + 1] = c[1];
        d[3 * x + 2] = c[2];
      }
      break;
  }
}

bool run_decoder(PngJob* j, const std::string& name, const DecodeOptions& options, bool want_exif) {
  j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, on_error, on_warning);
  if (j->png == nullptr) {
    std::snprintf(j->message, sizeof j->message, "cannot create a libpng reader");
    return false;
  }
  if (setjmp(png_jmpbuf(j->png))) return false;
  j->info = png_create_info_struct(j->png);
  if (j->info == nullptr) png_error(j->png, "cannot create a libpng info struct");
  png_set_read_fn(j->png, j, on_read);
  // The pixel limit is ours (checked below, before any row is allocated), so lift libpng's
  // default 1e6-per-side cap, which would refuse e.g. a valid 2000000 x 1 image Pillow reads.
  png_set_user_limits(j->png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(j->png, 16u << 20);  // ancillary chunks (iCCP, zTXt, eXIf...)
#ifdef PNG_CHECK_FOR_INVALID_INDEX_SUPPORTED
  png_set_check_for_invalid_index(j->png, 0);  // out-of-range indices read as black, as in PIL
#endif
  png_read_info(j->png, j->info);

  png_uint_32 w = 0, h = 0;
  int depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(j->png, j->info, &w, &h, &depth, &color_type, &interlace, nullptr, nullptr);
  check_image_size(w, h, name, "PNG", options);

  Palette pal;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp entries = nullptr;
    int n = 0;
    if (png_get_PLTE(j->png, j->info, &entries, &n) != PNG_INFO_PLTE || entries == nullptr) {
      png_error(j->png, "palette image without a PLTE chunk");
    }
    for (int i = 0; i < n && i < 256; ++i) {
      pal.rgb[i][0] = entries[i].red;
      pal.rgb[i][1] = entries[i].green;
      pal.rgb[i][2] = entries[i].blue;
    }
  }
  if (want_exif) {
    png_bytep exif = nullptr;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(j->png, j->info, &exif_size, &exif) != 0 && exif != nullptr) {
      j->out.exif.assign(exif, exif + exif_size);
    }
  }
  if (depth < 8) {
    if (color_type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(j->png);  // v * 255 / (2^d - 1)
    png_set_packing(j->png);  // palette indices: one byte each
  }
  const int passes = png_set_interlace_handling(j->png);
  png_read_update_info(j->png, j->info);
  const size_t rowbytes = png_get_rowbytes(j->png, j->info);

  RgbImage& im = j->out.image;
  im.width = static_cast<int>(w);
  im.height = static_cast<int>(h);
  im.pixels.resize(static_cast<size_t>(w) * h * 3);
  const int d8 = depth == 16 ? 16 : 8;
  if (passes == 1) {
    j->rows.resize(rowbytes);
    for (png_uint_32 y = 0; y < h; ++y) {
      png_read_row(j->png, j->rows.data(), nullptr);
      convert_row(j->rows.data(), &im.pixels[static_cast<size_t>(y) * w * 3], static_cast<int>(w), color_type, d8, pal);
    }
  } else {  // Adam7: libpng needs the whole image to combine the passes
    j->rows.resize(rowbytes * h);
    for (int p = 0; p < passes; ++p) {
      for (png_uint_32 y = 0; y < h; ++y) png_read_row(j->png, &j->rows[rowbytes * y], nullptr);
    }
    for (png_uint_32 y = 0; y < h; ++y) {
      convert_row(&j->rows[rowbytes * y], &im.pixels[static_cast<size_t>(y) * w * 3], static_cast<int>(w),
                  color_type, d8, pal);
    }
  }
  // Not png_read_end(): like PIL, ignore what follows the image data.
  return true;
}

}  // namespace

Decoded decode_png(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                   bool want_exif) {
  auto job = std::make_unique<PngJob>();
  job->data = data;
  job->size = size;
  if (!run_decoder(job.get(), name, options, want_exif)) bad_image(name, "PNG", job->message);
  return std::move(job->out);
}

}  // namespace t5g::image_internal
