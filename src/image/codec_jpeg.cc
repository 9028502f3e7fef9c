// JPEG (baseline, progressive, grey, YCbCr/RGB, CMYK/YCCK) through libjpeg(-turbo), configured as
// Pillow configures it (library defaults: ISLOW IDCT, fancy upsampling) so pixels match PIL's.
//
// libjpeg reports fatal errors through error_exit, which by default calls exit(). We install a
// handler that longjmps back to the single setjmp in run_decoder(). Only C frames (libjpeg and the
// handlers below) lie between the two, and all state that must survive the jump lives in a heap
// object, never in locals of run_decoder().
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

// jpeglib.h needs size_t and FILE declared first (above).
#include <jpeglib.h>
#include <jerror.h>

#include "image/codec.h"

namespace t5g::image_internal {
namespace {

constexpr int kMaxProgressiveScans = 500;  // real files have ~10; thousands is a CPU-exhaustion attack

struct JpegJob {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  jpeg_progress_mgr progress{};
  std::jmp_buf jump{};
  bool created = false;
  char message[JMSG_LENGTH_MAX + 64] = {0};
  Decoded out;
  std::vector<uint8_t> row;

  ~JpegJob() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegJob* job_of(j_common_ptr c) { return static_cast<JpegJob*>(c->client_data); }

[[noreturn]] void on_error_exit(j_common_ptr c) {
  JpegJob* j = job_of(c);
  (*c->err->format_message)(c, j->message);
  std::longjmp(j->jump, 1);
}

// Warnings (level -1) are ignored as Pillow ignores them, except running out of data: libjpeg
// would pad the image with grey, Pillow reports "image file is truncated".
void on_emit_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  if (c->err->msg_code == JWRN_JPEG_EOF) {
    JpegJob* j = job_of(c);
    std::snprintf(j->message, sizeof j->message, "truncated data (%s)", "premature end of JPEG data");
    std::longjmp(j->jump, 1);
  }
  c->err->num_warnings++;
}

void on_progress(j_common_ptr c) {
  if (!c->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxProgressiveScans) {
    JpegJob* j = job_of(c);
    std::snprintf(j->message, sizeof j->message, "more than %d progressive scans", kMaxProgressiveScans);
    std::longjmp(j->jump, 1);
  }
}

// PIL reads every 4-component JPEG as Adobe-inverted CMYK ("CMYK;I") and converts with cmyk2rgb:
// with c = 255 - raw, nk = 255 - k: out = clip(nk - (c * nk) / 255) using its MULDIV255 rounding.
inline uint8_t cmyk_channel(uint8_t raw_c, uint8_t raw_k) {
  const int c = 255 - raw_c;
  const int nk = raw_k;  // 255 - (255 - raw_k)
  const int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Everything that calls into libjpeg happens here, under one setjmp. Returns false after an
// error, with the reason in j->message. May throw std::bad_alloc (the caller's JpegJob owns the
// libjpeg state, so unwinding releases it).
bool run_decoder(JpegJob* j, const uint8_t* data, size_t size, const std::string& name,
                 const DecodeOptions& options, bool want_exif) {
  j->cinfo.err = jpeg_std_error(&j->err);
  j->err.error_exit = on_error_exit;
  j->err.emit_message = on_emit_message;
  j->cinfo.client_data = j;
  if (setjmp(j->jump)) return false;

  jpeg_create_decompress(&j->cinfo);
  j->created = true;
  j->progress.progress_monitor = on_progress;
  j->cinfo.progress = &j->progress;
  jpeg_mem_src(&j->cinfo, data, static_cast<unsigned long>(size));
  if (want_exif) jpeg_save_markers(&j->cinfo, JPEG_APP0 + 1, 0xFFFF);
  if (jpeg_read_header(&j->cinfo, TRUE) != JPEG_HEADER_OK) {
    std::snprintf(j->message, sizeof j->message, "tables-only stream, no image");
    return false;
  }
  check_image_size(j->cinfo.image_width, j->cinfo.image_height, name, "JPEG", options);
  // Bound libjpeg's own buffers (whole-image coefficient arrays of progressive files) too.
  j->cinfo.mem->max_memory_to_use = static_cast<long>(std::min<int64_t>(
      static_cast<int64_t>(j->cinfo.image_width) * j->cinfo.image_height * 16 + (64 << 20), 0x7fffffff));

  const int nc = j->cinfo.num_components;
  if (nc == 1) {
    j->cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (nc == 3) {
    j->cinfo.out_color_space = JCS_RGB;
  } else if (nc == 4) {
    j->cinfo.out_color_space = JCS_CMYK;  // libjpeg converts YCCK to CMYK itself
  } else {
    std::snprintf(j->message, sizeof j->message, "%d colour components (PIL reads 1, 3 or 4)", nc);
    return false;
  }
  jpeg_start_decompress(&j->cinfo);
  const int w = static_cast<int>(j->cinfo.output_width);
  const int h = static_cast<int>(j->cinfo.output_height);
  const int oc = j->cinfo.output_components;
  RgbImage& im = j->out.image;
  im.width = w;
  im.height = h;
  im.pixels.resize(static_cast<size_t>(w) * h * 3);
  j->row.resize(static_cast<size_t>(w) * oc);
  while (j->cinfo.output_scanline < j->cinfo.output_height) {
    const int y = static_cast<int>(j->cinfo.output_scanline);
    uint8_t* dst = &im.pixels[static_cast<size_t>(y) * w * 3];
    JSAMPROW rows[1] = {oc == 3 ? dst : j->row.data()};
    if (jpeg_read_scanlines(&j->cinfo, rows, 1) != 1) {
      std::snprintf(j->message, sizeof j->message, "decoder stopped at row %d of %d", y, h);
      return false;
    }
    const uint8_t* s = j->row.data();
    if (oc == 1) {
      for (int x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = s[x];
    } else if (oc == 4) {
      for (int x = 0; x < w; ++x) {
        const uint8_t k = s[4 * x + 3];
        dst[3 * x + 0] = cmyk_channel(s[4 * x + 0], k);
        dst[3 * x + 1] = cmyk_channel(s[4 * x + 1], k);
        dst[3 * x + 2] = cmyk_channel(s[4 * x + 2], k);
      }
    }
  }
  if (want_exif) {
    for (jpeg_saved_marker_ptr m = j->cinfo.marker_list; m != nullptr; m = m->next) {
      if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
        j->out.exif.assign(m->data + 6, m->data + m->data_length);
        break;
      }
    }
  }
  // Not jpeg_finish_decompress(): like PIL, ignore whatever follows the last scanline.
  return true;
}

}  // namespace

Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const DecodeOptions& options,
                    bool want_exif) {
  auto job = std::make_unique<JpegJob>();
  if (!run_decoder(job.get(), data, size, name, options, want_exif)) bad_image(name, "JPEG", job->message);
  return std::move(job->out);
}

}  // namespace t5g::image_internal
