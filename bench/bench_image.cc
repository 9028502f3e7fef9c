// Image pipeline microbenchmarks. Inputs are synthetic (a smooth gradient plus noise, so JPEG and
// PNG compress like photos), encoded once in memory with libjpeg / libpng.
//   ./bench_image --benchmark_filter=... --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Counter MP/s: source megapixels per second. Resize and preprocess use OpenMP (OMP_NUM_THREADS).
#include <benchmark/benchmark.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "image/image.h"
#include "image/preprocess.h"
#include "image/resize.h"

namespace {

using namespace t5g;

RgbImage synthetic(int w, int h) {
  RgbImage im;
  im.width = w;
  im.height = h;
  im.pixels.resize(static_cast<size_t>(w) * h * 3);
  std::mt19937 rng(1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &im.pixels[(static_cast<size_t>(y) * w + x) * 3];
      const int n = static_cast<int>(rng() % 24) - 12;
      p[0] = static_cast<uint8_t>(std::clamp(x * 255 / w + n, 0, 255));
      p[1] = static_cast<uint8_t>(std::clamp(y * 255 / h + n, 0, 255));
      p[2] = static_cast<uint8_t>(std::clamp((x + y) * 127 / (w + h) + n, 0, 255));
    }
  }
  return im;
}

std::vector<uint8_t> encode_jpeg(const RgbImage& im, bool progressive) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = im.width;
  c.image_height = im.height;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&im.pixels[static_cast<size_t>(c.next_scanline) * im.width * 3]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

void png_write(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

std::vector<uint8_t> encode_png(const RgbImage& im) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_write, nullptr);
  png_set_IHDR(png, info, im.width, im.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < im.height; ++y) png_write_row(png, &im.pixels[static_cast<size_t>(y) * im.width * 3]);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

void set_mp(benchmark::State& state, int w, int h) {
  state.counters["MP/s"] = benchmark::Counter(static_cast<double>(w) * h * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_DecodeJpeg(benchmark::State& state) {
  const int w = static_cast<int>(state.range(0)), h = static_cast<int>(state.range(1));
  const std::vector<uint8_t> f = encode_jpeg(synthetic(w, h), state.range(2) != 0);
  for (auto _ : state) benchmark::DoNotOptimize(decode_image_memory(f.data(), f.size(), "bench.jpg"));
  set_mp(state, w, h);
}
BENCHMARK(BM_DecodeJpeg)->Args({1920, 1080, 0})->Args({1920, 1080, 1})->Args({4032, 3024, 0})->Unit(benchmark::kMillisecond);

void BM_DecodePng(benchmark::State& state) {
  const int w = static_cast<int>(state.range(0)), h = static_cast<int>(state.range(1));
  const std::vector<uint8_t> f = encode_png(synthetic(w, h));
  for (auto _ : state) benchmark::DoNotOptimize(decode_image_memory(f.data(), f.size(), "bench.png"));
  set_mp(state, w, h);
}
BENCHMARK(BM_DecodePng)->Args({1920, 1080})->Unit(benchmark::kMillisecond);

void BM_Resize896(benchmark::State& state) {
  const int w = static_cast<int>(state.range(0)), h = static_cast<int>(state.range(1));
  const auto filter = state.range(2) ? ResizeFilter::kPilBilinear : ResizeFilter::kTorchvisionBilinear;
  const RgbImage im = synthetic(w, h);
  for (auto _ : state) benchmark::DoNotOptimize(resize_rgb(im.pixels.data(), w, h, w * 3, 896, 896, filter));
  set_mp(state, w, h);
  state.SetLabel(state.range(2) ? "pil" : "torchvision");
}
BENCHMARK(BM_Resize896)
    ->Args({640, 480, 0})->Args({1920, 1080, 0})->Args({4032, 3024, 0})->Args({1920, 1080, 1})
    ->Unit(benchmark::kMillisecond);

void BM_Preprocess896(benchmark::State& state) {
  const RgbImage im = synthetic(1920, 1080);
  PreprocessOptions o;
  o.pan_and_scan = state.range(0) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(preprocess_with_crops(im, o));
  set_mp(state, 1920, 1080);
  state.SetLabel(o.pan_and_scan ? "pan_and_scan (1 + 2 crops)" : "single image");
}
BENCHMARK(BM_Preprocess896)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
