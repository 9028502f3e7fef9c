// Resize and pan-and-scan against tests/data/images/oracle_preprocess.json, made in the reference
// environment (transformers 5.12.1, torch 2.14.1 on an AVX2 CPU, torchvision 0.27, Pillow 13) by
// make_preprocess_vectors.py: the torchvision and PIL resizes over many size pairs (uint8 output
// SHA-256) and both Gemma3 image processors with do_pan_and_scan=True (fp32 output SHA-256).
#include <gtest/gtest.h>

#include <string>

#include "image/preprocess.h"
#include "image/resize.h"
#include "test_support.h"

namespace t5g {
namespace {

const std::string kFile = std::string(T5G_TEST_DATA) + "/images/oracle_preprocess.json";

// The generator's input formula: v(x, y, c) = ((x*73 + y*151 + c*199) ^ ((x*y*31) >> 3)) & 255.
RgbImage formula_image(int w, int h) {
  RgbImage im;
  im.width = w;
  im.height = h;
  im.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        im.pixels[(y * w + x) * 3 + c] = static_cast<uint8_t>(((x * 73 + y * 151 + c * 199) ^ ((x * y * 31) >> 3)) & 255);
      }
    }
  }
  return im;
}

const nlohmann::json& oracle() {
  static const nlohmann::json j = nlohmann::json::parse(test::read_bytes(kFile));
  return j;
}

TEST(ImageOracleResize, TorchvisionAndPilMatchOverManySizes) {
  int n = 0;
  for (const auto& c : oracle().at("resize")) {
    const int iw = c["in"][0], ih = c["in"][1], ow = c["out"][0], oh = c["out"][1];
    const RgbImage im = formula_image(iw, ih);
    for (const auto& [filter, key] : {std::pair{ResizeFilter::kTorchvisionBilinear, "torchvision_sha256"},
                                      std::pair{ResizeFilter::kPilBilinear, "pil_sha256"}}) {
      const std::vector<uint8_t> out = resize_rgb(im.pixels.data(), iw, ih, iw * 3, ow, oh, filter);
      EXPECT_EQ(test::sha256_hex(out.data(), out.size()), c[key].get<std::string>())
          << key << " " << iw << "x" << ih << " -> " << ow << "x" << oh;
      ++n;
    }
  }
  EXPECT_GE(n, 100);
}

TEST(ImageOraclePanAndScan, CropsAndPixelValuesMatch) {
  for (const auto& c : oracle().at("pan_and_scan")) {
    const std::string backend = c["backend"];
    const int w = c["image"][0], h = c["image"][1];
    PreprocessOptions o;
    o.image_size = c["image_size"];
    o.filter = backend == "pil" ? ResizeFilter::kPilBilinear : ResizeFilter::kTorchvisionBilinear;
    o.pan_and_scan = true;
    o.pan_and_scan_min_crop_size = c["min_crop_size"];
    o.pan_and_scan_max_num_crops = c["max_num_crops"];
    o.pan_and_scan_min_ratio = c["min_ratio"];
    const std::string what = backend + " " + std::to_string(w) + "x" + std::to_string(h);

    const int want_crops = c["num_crops"][0];
    EXPECT_EQ(static_cast<int>(pan_and_scan_crops(w, h, o).size()), want_crops) << what;
    const auto outs = preprocess_with_crops(formula_image(w, h), o);
    ASSERT_EQ(outs.size(), c["outputs"].size()) << what;
    for (size_t i = 0; i < outs.size(); ++i) {
      EXPECT_EQ(test::sha256_hex(outs[i].data(), outs[i].size() * sizeof(float)),
                c["outputs"][i]["sha256_f32"].get<std::string>())
          << what << " output " << i << (i == 0 ? " (original)" : " (crop)");
    }
  }
}

TEST(ImagePanAndScan, GeometryFollowsTheReferenceFormula) {
  PreprocessOptions o;  // 256 / 4 / 1.2
  // 1030x257: ratio 4.008 -> 4 crops of ceil(1030/4)=258; the last one is cut at the border.
  auto b = pan_and_scan_crops(1030, 257, o);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].x, 0);
  EXPECT_EQ(b[3].x, 774);
  EXPECT_EQ(b[3].width, 256);
  EXPECT_EQ(b[3].height, 257);
  // Ratio exactly 1.2 activates (the test is "ratio < 1.2 -> none", in double precision).
  EXPECT_EQ(pan_and_scan_crops(600, 500, o).size(), 2u);
  EXPECT_EQ(pan_and_scan_crops(599, 500, o).size(), 0u);
  // Portrait: crops stacked vertically, row-major order.
  b = pan_and_scan_crops(300, 900, o);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1].y, 300);
  EXPECT_EQ(b[1].x, 0);
  // Crop smaller than min_crop_size: none.
  EXPECT_TRUE(pan_and_scan_crops(600, 250, o).empty());
  // preprocess() ignores pan_and_scan; preprocess_with_crops() without it gives one image.
  o.image_size = 16;
  EXPECT_EQ(preprocess_with_crops(formula_image(1030, 257), o).size(), 1u);
  o.pan_and_scan = true;
  EXPECT_EQ(preprocess_with_crops(formula_image(1030, 257), o).size(), 5u);
  // Options the reference would divide by zero with are errors.
  o.pan_and_scan_min_crop_size = 0;
  EXPECT_THROW(pan_and_scan_crops(1000, 100, o), Error);
  // Tiny crops with custom options can leave an empty last crop: an error, not a 0-wide image.
  o.pan_and_scan_min_crop_size = 1;
  EXPECT_THROW(pan_and_scan_crops(6, 1, o), Error);
}

TEST(ImagePreprocess, RejectsBadInput) {
  PreprocessOptions o;
  RgbImage empty;
  EXPECT_THROW(preprocess(empty, o), Error);
  RgbImage wrong = formula_image(4, 4);
  wrong.pixels.pop_back();
  EXPECT_THROW(preprocess(wrong, o), Error);
  o.image_size = 0;
  EXPECT_THROW(preprocess(formula_image(4, 4), o), Error);
  o.image_size = 8;
  o.std[1] = 0.0f;
  EXPECT_THROW(preprocess(formula_image(4, 4), o), Error);
}

TEST(ImagePreprocess, OutputLayoutIsChwAndNormalised) {
  // A constant image stays constant through the resize: every plane holds (p/255 - 0.5)/0.5.
  RgbImage im;
  im.width = 7;
  im.height = 3;
  for (int i = 0; i < 21; ++i) im.pixels.insert(im.pixels.end(), {0, 255, 51});
  PreprocessOptions o;
  o.image_size = 5;
  const auto v = preprocess(im, o);
  ASSERT_EQ(v.size(), 75u);
  EXPECT_FLOAT_EQ(v[0], -1.0f);
  EXPECT_FLOAT_EQ(v[25], 1.0f);
  EXPECT_FLOAT_EQ(v[50], (51.0f - 127.5f) / 127.5f);
  EXPECT_FLOAT_EQ(v[74], (51.0f - 127.5f) / 127.5f);
}

}  // namespace
}  // namespace t5g
