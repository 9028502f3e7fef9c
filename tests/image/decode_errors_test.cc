// Broken inputs: every one must give a t5g::Error that names the input and says what is wrong,
// never a crash, a hang, an exit() from a codec library or an attempt to allocate a bomb.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <random>
#include <string>

#include "image/image.h"
#include "test_support.h"

namespace t5g {
namespace {

const std::string kDir = std::string(T5G_TEST_DATA) + "/images";

std::vector<uint8_t> fixture(const std::string& name) { return test::read_bytes(kDir + "/" + name); }

// Decodes and returns the error message; fails the test if no t5g::Error is thrown.
std::string error_of(const std::vector<uint8_t>& bytes, const std::string& name, const DecodeOptions& o = {}) {
  try {
    decode_image_memory(bytes.data(), bytes.size(), name, o);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << name << ": decoded without error";
  return {};
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& name, const std::string& fragment,
                  const DecodeOptions& o = {}) {
  const std::string msg = error_of(bytes, name, o);
  EXPECT_NE(msg.find(name), std::string::npos) << "message does not name the input: " << msg;
  EXPECT_NE(msg.find(fragment), std::string::npos) << "expected \"" << fragment << "\" in: " << msg;
}

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

// A PNG whose IHDR (with a correct CRC) declares width x height; the IDAT is a token one.
std::vector<uint8_t> png_header_only(uint32_t width, uint32_t height) {
  std::vector<uint8_t> f = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr = {'I', 'H', 'D', 'R'};
  for (uint32_t v : {width, height}) {
    const auto b = be32(v);
    ihdr.insert(ihdr.end(), b.begin(), b.end());
  }
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  const auto len = be32(13);
  f.insert(f.end(), len.begin(), len.end());
  f.insert(f.end(), ihdr.begin(), ihdr.end());
  const auto crc = be32(static_cast<uint32_t>(crc32(0, ihdr.data(), static_cast<uInt>(ihdr.size()))));
  f.insert(f.end(), crc.begin(), crc.end());
  const uint8_t idat[] = {0, 0, 0, 2, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0, 0, 0, 0};
  f.insert(f.end(), std::begin(idat), std::end(idat));
  return f;
}

TEST(ImageDecodeErrors, ZeroByteFileAndBuffer) {
  const std::string path = std::string(T5G_TEST_TMP) + "/zero_bytes.png";
  test::write_bytes(path, {});
  try {
    decode_image_file(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
  EXPECT_THROW(decode_image_memory(nullptr, 0, "null"), Error);
}

TEST(ImageDecodeErrors, MissingFileNamesThePath) {
  const std::string path = kDir + "/does_not_exist.png";
  try {
    decode_image_file(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(ImageDecodeErrors, UnknownAndUnsupportedFormats) {
  std::mt19937 rng(42);
  std::vector<uint8_t> noise(4096);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  noise[0] = 0x12;  // not a magic byte of any format
  expect_error(noise, "noise.bin", "not a supported image");
  expect_error({'I', 'I', '*', 0, 8, 0, 0, 0}, "scan.tif", "TIFF images are not supported");
  expect_error({0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f'}, "photo.avif", "AVIF");
  expect_error({'h', 'e', 'l', 'l', 'o'}, "hello.txt", "first bytes 68 65 6c 6c 6f");
}

TEST(ImageDecodeErrors, RandomBytesBehindEachMagic) {
  std::mt19937 rng(7);
  const std::vector<std::vector<uint8_t>> magics = {
      {0xFF, 0xD8, 0xFF}, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, {'R', 'I', 'F', 'F', 0, 1, 0, 0, 'W', 'E', 'B', 'P'},
      {'G', 'I', 'F', '8', '9', 'a'}, {'B', 'M'}};
  for (const auto& m : magics) {
    for (int i = 0; i < 20; ++i) {
      std::vector<uint8_t> f = m;
      const size_t n = rng() % 600;
      for (size_t k = 0; k < n; ++k) f.push_back(static_cast<uint8_t>(rng()));
      EXPECT_THROW(decode_image_memory(f.data(), f.size(), "random"), Error);
    }
  }
}

TEST(ImageDecodeErrors, TruncatedFiles) {
  const std::pair<const char*, const char*> cases[] = {
      {"jpeg_baseline420.jpg", "truncated"}, {"jpeg_progressive.jpg", "truncated"}, {"png_rgb8.png", "truncated"},
      {"png_rgb8_interlaced.png", "truncated"}, {"webp_lossy.webp", "truncated"}, {"webp_lossless.webp", "truncated"},
      {"webp_animated.webp", "WebP"}, {"gif_basic.gif", "GIF"}, {"bmp_24.bmp", "truncated"}};
  for (const auto& [file, fragment] : cases) {
    const std::vector<uint8_t> full = fixture(file);
    for (const double keep : {0.9, 0.6, 0.3}) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() * keep));
      expect_error(cut, std::string(file) + "@" + std::to_string(cut.size()), fragment);
    }
    // Cut inside the header too.
    std::vector<uint8_t> head(full.begin(), full.begin() + 16);
    EXPECT_THROW(decode_image_memory(head.data(), head.size(), file), Error) << file;
  }
}

TEST(ImageDecodeErrors, DecompressionBombsAreRefusedBeforeAllocating) {
  // PNG claiming 100000 x 100000 (10^10 pixels, 30 GB of RGB).
  expect_error(png_header_only(100000, 100000), "bomb.png", "more than the limit of 178956970 pixels");

  // JPEG: patch the SOF0 of a real file to 65000 x 65000.
  std::vector<uint8_t> jpg = fixture("jpeg_baseline420.jpg");
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = jpg[i + 7] = 0xFD;
      jpg[i + 6] = jpg[i + 8] = 0xE8;
      break;
    }
  }
  expect_error(jpg, "bomb.jpg", "more than the limit");

  // GIF: logical screen 65535 x 65535.
  std::vector<uint8_t> gif = fixture("gif_basic.gif");
  gif[6] = gif[7] = gif[8] = gif[9] = 0xFF;
  expect_error(gif, "bomb.gif", "more than the limit");

  // BMP: width 2^31 - 1.
  std::vector<uint8_t> bmp = fixture("bmp_24.bmp");
  bmp[18] = 0xFF, bmp[19] = 0xFF, bmp[20] = 0xFF, bmp[21] = 0x7F;
  expect_error(bmp, "bomb.bmp", "more than the limit");

  // A caller's tighter limit applies to legitimate files as well.
  DecodeOptions small;
  small.max_pixels = 100;
  expect_error(fixture("webp_lossless.webp"), "small.webp", "more than the limit of 100 pixels", small);
  expect_error(fixture("jpeg_progressive.jpg"), "small.jpg", "more than the limit of 100 pixels", small);
  DecodeOptions bad;
  bad.max_pixels = 0;
  EXPECT_THROW(decode_image_memory(fixture("png_rgb8.png").data(), fixture("png_rgb8.png").size(), "x", bad), Error);
}

TEST(ImageDecodeErrors, GifWithoutFrames) {
  // Header, 4x4 screen without colour table, then the trailer.
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 4, 0, 4, 0, 0, 0, 0, 0x3B};
  expect_error(gif, "empty.gif", "no image frames");
  // Graphic control extension, then the trailer.
  const std::vector<uint8_t> gif2 = {'G', 'I', 'F', '8', '9', 'a', 4, 0, 4, 0, 0, 0, 0,
                                     0x21, 0xF9, 4, 1, 0, 0, 3, 0, 0x3B};
  expect_error(gif2, "gce_only.gif", "no image frames");
}

TEST(ImageDecodeErrors, ZeroSizedImages) {
  std::vector<uint8_t> bmp = fixture("bmp_24.bmp");
  bmp[18] = bmp[19] = bmp[20] = bmp[21] = 0;  // width 0
  expect_error(bmp, "zero_width.bmp", "no pixels (declared size 0x9)");
  // 0x0 logical screen holding a 0x0 frame.
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0, 0, 0,
                                    ',', 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3B};
  expect_error(gif, "zero.gif", "GIF");
  expect_error(png_header_only(0, 10), "zero.png", "PNG");
}

TEST(ImageDecodeErrors, BmpWithLyingHeaders) {
  const std::vector<uint8_t> good = fixture("bmp_24.bmp");
  auto patch32 = [](std::vector<uint8_t> f, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
    return f;
  };
  expect_error(patch32(good, 10, 0x7FFFFFF0), "offset_past_end.bmp", "truncated");
  expect_error(patch32(good, 10, 20), "offset_into_header.bmp", "points into the header");
  expect_error(patch32(good, 14, 0xFFFF), "header_size.bmp", "unsupported header size");
  expect_error(patch32(std::vector<uint8_t>(good.begin(), good.begin() + 60), 14, 124), "header_too_long.bmp",
               "truncated");
  expect_error(patch32(good, 22, 5000), "height_lies.bmp", "truncated");  // more rows than the file holds
  std::vector<uint8_t> depth = good;
  depth[28] = 7;
  expect_error(depth, "depth.bmp", "unsupported bit depth 7");
  expect_error(patch32(good, 30, 1), "rle8.bmp", "RLE-compressed BMP is not supported");
  const std::vector<uint8_t> pal = fixture("bmp_8.bmp");
  expect_error(patch32(pal, 46, 70000), "palette_size.bmp", "palette of 70000 colours");
  std::vector<uint8_t> tiny(good.begin(), good.begin() + 20);
  expect_error(tiny, "tiny.bmp", "truncated");
  const std::vector<uint8_t> bf = fixture("bmp_32_bitfields.bmp");
  expect_error(patch32(bf, 54, 0x00FF00FF), "mask.bmp", "non-contiguous");
}

TEST(ImageDecodeErrors, CorruptDataInsideValidFrames) {
  // Overwrite the middle of each file's compressed data with garbage: decoders either cope (PIL
  // would too: JPEG just shows artefacts) or fail with a t5g::Error; nothing else.
  for (const char* file : {"png_rgb8.png", "png_pal4_interlaced.png", "webp_lossy.webp", "webp_lossless.webp",
                           "gif_interlaced.gif", "jpeg_progressive.jpg"}) {
    std::vector<uint8_t> f = fixture(file);
    for (size_t i = f.size() / 2; i < f.size() / 2 + 24 && i < f.size(); ++i) f[i] ^= 0xA5;
    try {
      decode_image_memory(f.data(), f.size(), file);
    } catch (const Error&) {
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace t5g
