// Decoding the committed fixtures (tests/data/images, written by make_fixtures.py) must give
// exactly what Pillow's Image.open(f).convert("RGB") gives (expected.json), every mode of every
// format; files with EXIF must also match ImageOps.exif_transpose when orientation is applied.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "image/image.h"
#include "test_support.h"

namespace t5g {
namespace {

const std::string kDir = std::string(T5G_TEST_DATA) + "/images";

struct Fixture {
  std::string file;
  nlohmann::json expected;
};

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.file; }  // readable test names

std::vector<Fixture> load_fixtures() {
  const auto j = nlohmann::json::parse(test::read_bytes(kDir + "/expected.json"));
  std::vector<Fixture> v;
  for (const auto& [name, rec] : j.at("files").items()) v.push_back({name, rec});
  return v;
}

// Compares an image with Pillow's bytes; reports the size of any difference.
void expect_same(const RgbImage& im, const nlohmann::json& size, const std::string& b64, const std::string& what) {
  const std::vector<uint8_t> want = test::base64_decode(b64);
  ASSERT_EQ(im.width, size[0].get<int>()) << what;
  ASSERT_EQ(im.height, size[1].get<int>()) << what;
  ASSERT_EQ(im.pixels.size(), want.size()) << what;
  int max_diff = 0;
  size_t differing = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const int d = std::abs(static_cast<int>(im.pixels[i]) - want[i]);
    max_diff = std::max(max_diff, d);
    differing += d != 0;
  }
  EXPECT_EQ(differing, 0u) << what << ": " << differing << " of " << want.size() << " samples differ from Pillow, max "
                           << max_diff;
}

class ImageDecodeFixtures : public ::testing::TestWithParam<Fixture> {};

TEST_P(ImageDecodeFixtures, MatchesPillowConvertRgb) {
  const Fixture& f = GetParam();
  const std::string path = kDir + "/" + f.file;
  const RgbImage im = decode_image_file(path);
  expect_same(im, f.expected.at("size"), f.expected.at("rgb_b64").get<std::string>(), f.file);

  // The same bytes from memory decode identically.
  const std::vector<uint8_t> bytes = test::read_bytes(path);
  const RgbImage mem = decode_image_memory(bytes.data(), bytes.size(), f.file);
  EXPECT_EQ(mem.pixels, im.pixels);

  if (f.expected.contains("exif_transposed_rgb_b64")) {
    DecodeOptions o;
    o.apply_exif_orientation = true;
    const RgbImage t = decode_image_file(path, o);
    expect_same(t, f.expected.at("exif_transposed_size"), f.expected.at("exif_transposed_rgb_b64").get<std::string>(),
                f.file + " (exif_transpose)");
  }
}

INSTANTIATE_TEST_SUITE_P(Pillow, ImageDecodeFixtures, ::testing::ValuesIn(load_fixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& i) {
                           std::string n = i.param.file;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(ImageDecodeFixturesMeta, SniffsByContentNotExtension) {
  // A PNG named .jpg decodes as PNG.
  const std::vector<uint8_t> png = test::read_bytes(kDir + "/png_rgb8.png");
  const std::string tmp = std::string(T5G_TEST_TMP) + "/really_a_png.jpg";
  test::write_bytes(tmp, png);
  EXPECT_EQ(sniff_image_format(png.data(), png.size()), ImageFormat::kPng);
  const RgbImage a = decode_image_file(tmp);
  const RgbImage b = decode_image_file(kDir + "/png_rgb8.png");
  EXPECT_EQ(a.pixels, b.pixels);
  std::remove(tmp.c_str());
}

TEST(ImageDecodeFixturesMeta, ExifIgnoredByDefault) {
  const RgbImage plain = decode_image_file(kDir + "/jpeg_exif6.jpg");
  EXPECT_EQ(plain.width, 17);
  EXPECT_EQ(plain.height, 11);
  DecodeOptions o;
  o.apply_exif_orientation = true;
  const RgbImage turned = decode_image_file(kDir + "/jpeg_exif6.jpg", o);
  EXPECT_EQ(turned.width, 11);
  EXPECT_EQ(turned.height, 17);
}

}  // namespace
}  // namespace t5g
