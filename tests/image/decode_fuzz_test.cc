// Randomised robustness test: mutate every fixture (bit flips, byte overwrites with boundary
// values, truncation, chunk duplication and deletion, header-field scribbles) and decode. Each
// decode must either succeed with a consistent image or throw t5g::Error; anything else (another
// exception type, a crash, a sanitizer report) fails. Deterministic (fixed seed) so failures
// reproduce; run under ASan+UBSan too (-DT5G_SANITIZE=ON).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "image/exif.h"
#include "image/image.h"
#include "test_support.h"

namespace t5g {
namespace {

const std::string kDir = std::string(T5G_TEST_DATA) + "/images";

std::vector<std::string> seed_files() {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(kDir)) {
    const std::string ext = e.path().extension().string();
    if (ext == ".png" || ext == ".jpg" || ext == ".webp" || ext == ".gif" || ext == ".bmp") v.push_back(e.path().string());
  }
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<uint8_t> mutate(std::vector<uint8_t> f, std::mt19937& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !f.empty(); ++e) {
    switch (rng() % 7) {
      case 0:  // flip bits
        for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k) f[pick(f.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1: {  // boundary values, biased towards the header
        static const uint8_t values[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE};
        const size_t at = rng() % 2 ? pick(std::min<size_t>(f.size(), 64)) : pick(f.size());
        f[at] = values[rng() % 6];
        break;
      }
      case 2:  // truncate
        f.resize(pick(f.size()));
        break;
      case 3: {  // duplicate a span
        const size_t a = pick(f.size()), n = std::min<size_t>(pick(64) + 1, f.size() - a);
        std::vector<uint8_t> span(f.begin() + static_cast<std::ptrdiff_t>(a), f.begin() + static_cast<std::ptrdiff_t>(a + n));
        f.insert(f.begin() + static_cast<std::ptrdiff_t>(pick(f.size())), span.begin(), span.end());
        break;
      }
      case 4: {  // delete a span
        const size_t a = pick(f.size()), n = std::min<size_t>(pick(64) + 1, f.size() - a);
        f.erase(f.begin() + static_cast<std::ptrdiff_t>(a), f.begin() + static_cast<std::ptrdiff_t>(a + n));
        break;
      }
      case 5:  // random bytes
        for (int k = 0; k < 1 + static_cast<int>(rng() % 16); ++k) f[pick(f.size())] = static_cast<uint8_t>(rng());
        break;
      case 6: {  // 16/32-bit little/big-endian size-like field set to a large value
        const size_t at = pick(std::min<size_t>(f.size(), 128));
        const uint32_t v = rng() % 2 ? 0xFFFFu : 0x7FFFFFFFu;
        for (size_t k = 0; k < 4 && at + k < f.size(); ++k) f[at + k] = static_cast<uint8_t>(v >> (8 * (rng() % 2 ? k : 3 - k)));
        break;
      }
    }
  }
  return f;
}

TEST(ImageDecodeFuzz, MutatedFixturesDecodeOrThrowError) {
  const auto files = seed_files();
  ASSERT_GE(files.size(), 40u);
  const int per_file = std::getenv("T5G_IMAGE_FUZZ_ITERS") ? std::atoi(std::getenv("T5G_IMAGE_FUZZ_ITERS")) : 400;
  std::mt19937 rng(20250101);
  DecodeOptions o;
  o.max_pixels = 1 << 20;  // keeps every decode small and fast, also under sanitizers
  int ok = 0, errors = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& path : files) {
    const std::vector<uint8_t> original = test::read_bytes(path);
    for (int i = 0; i < per_file; ++i) {
      const std::vector<uint8_t> f = mutate(original, rng);
      o.apply_exif_orientation = (i & 1) != 0;
      try {
        const RgbImage im = decode_image_memory(f.data(), f.size(), path, o);
        ASSERT_GT(im.width, 0);
        ASSERT_GT(im.height, 0);
        ASSERT_LE(static_cast<int64_t>(im.width) * im.height, o.max_pixels);
        ASSERT_EQ(im.pixels.size(), static_cast<size_t>(im.width) * im.height * 3);
        ++ok;
      } catch (const Error&) {
        ++errors;
      } catch (const std::exception& e) {
        FAIL() << path << " mutation " << i << ": non-t5g exception " << e.what();
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ fuzz     ] %zu files x %d mutations: %d decoded, %d t5g::Error, %.1f s\n", files.size(), per_file, ok,
              errors, s);
  EXPECT_GT(errors, 0);
  EXPECT_GT(ok, 0);
}

TEST(ImageDecodeFuzz, ExifParserNeverReadsOutOfBounds) {
  std::mt19937 rng(99);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b(rng() % 64);
    for (auto& x : b) x = static_cast<uint8_t>(rng() % 4 == 0 ? rng() % 16 : rng());
    if (b.size() >= 4 && rng() % 2) {
      b[0] = b[1] = (rng() % 2) ? 'I' : 'M';
      b[b[0] == 'I' ? 2 : 3] = 42;
      b[b[0] == 'I' ? 3 : 2] = 0;
    }
    const int o = exif_orientation(b.data(), b.size());
    ASSERT_GE(o, 1);
    ASSERT_LE(o, 8);
  }
  EXPECT_EQ(exif_orientation(nullptr, 0), 1);
}

TEST(ImageExifOrientation, AllEightMatchPil) {
  // A 3x2 image with distinct pixels, transformed as PIL's exif_transpose would.
  RgbImage im;
  im.width = 3;
  im.height = 2;
  for (uint8_t i = 0; i < 6; ++i) im.pixels.insert(im.pixels.end(), {i, i, i});
  // Expected pixel order (row-major, value = original index) and size for each orientation.
  const std::vector<std::pair<std::pair<int, int>, std::vector<int>>> want = {
      {{3, 2}, {0, 1, 2, 3, 4, 5}},  // 1
      {{3, 2}, {2, 1, 0, 5, 4, 3}},  // 2 mirror
      {{3, 2}, {5, 4, 3, 2, 1, 0}},  // 3 rotate 180
      {{3, 2}, {3, 4, 5, 0, 1, 2}},  // 4 flip
      {{2, 3}, {0, 3, 1, 4, 2, 5}},  // 5 transpose
      {{2, 3}, {3, 0, 4, 1, 5, 2}},  // 6 rotate 90 clockwise
      {{2, 3}, {5, 2, 4, 1, 3, 0}},  // 7 transverse
      {{2, 3}, {2, 5, 1, 4, 0, 3}},  // 8 rotate 90 counter-clockwise
  };
  for (int o = 1; o <= 8; ++o) {
    const RgbImage t = apply_exif_orientation(im, o);
    EXPECT_EQ(t.width, want[o - 1].first.first) << o;
    EXPECT_EQ(t.height, want[o - 1].first.second) << o;
    std::vector<int> got;
    for (size_t i = 0; i < t.pixels.size(); i += 3) got.push_back(t.pixels[i]);
    EXPECT_EQ(got, want[o - 1].second) << "orientation " << o;
  }
}

}  // namespace
}  // namespace t5g
