// Reference vectors for the image processor (tests/data/vectors/processor, made by
// shared/oracle/make_processor_vectors.py with transformers 5.12.1): Gemma3ImageProcessor
// (torchvision backend) and Gemma3ImageProcessorPil on three synthetic images at 56 and 896.
// The 56 px outputs are stored whole; the 896 px ones as a ::8 subsample plus the SHA-256 of the
// full fp32 tensor, so a matching hash proves the whole 3x896x896 output bit-exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "image/preprocess.h"
#include "test_support.h"

namespace t5g {
namespace {

const std::string kDir = std::string(T5G_TEST_DATA) + "/vectors/processor";

struct Case {
  std::string backend;  // "torchvision" | "pil"
  int size;
  std::string image;  // "img_37x53" ...
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.backend << "." << c.size << "." << c.image; }

class ImageProcessorVectors : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    tensors_ = new std::map<std::string, test::StTensor>(test::read_safetensors(kDir + "/images.safetensors"));
    manifest_ = new nlohmann::json(nlohmann::json::parse(test::read_bytes(kDir + "/manifest.json")));
  }
  static void TearDownTestSuite() {
    delete tensors_;
    delete manifest_;
  }
  static std::map<std::string, test::StTensor>* tensors_;
  static nlohmann::json* manifest_;
};
std::map<std::string, test::StTensor>* ImageProcessorVectors::tensors_ = nullptr;
nlohmann::json* ImageProcessorVectors::manifest_ = nullptr;

RgbImage raw_image(const test::StTensor& t) {
  RgbImage im;
  im.height = static_cast<int>(t.shape.at(0));
  im.width = static_cast<int>(t.shape.at(1));
  im.pixels = t.bytes;
  return im;
}

TEST_P(ImageProcessorVectors, MatchesReference) {
  const Case& c = GetParam();
  const std::string key = c.backend + "." + std::to_string(c.size) + "." + c.image;
  const auto& cfg = (*manifest_)["image_processor"][c.backend + ".config"];
  PreprocessOptions o;
  o.image_size = c.size;
  for (int i = 0; i < 3; ++i) {
    o.mean[i] = cfg["image_mean"][i].get<float>();
    o.std[i] = cfg["image_std"][i].get<float>();
  }
  o.rescale = cfg["rescale_factor"].get<double>();
  o.filter = c.backend == "pil" ? ResizeFilter::kPilBilinear : ResizeFilter::kTorchvisionBilinear;

  const std::vector<float> out = preprocess(raw_image(tensors_->at("raw." + c.image)), o);
  ASSERT_EQ(out.size(), 3u * c.size * c.size);

  // Element-wise comparison against the stored tensor (whole, or every 8th row and column).
  const int step = c.size == 56 ? 1 : 8;
  const std::string tname = (step == 1 ? "pixel_values." : "pixel_values_sub8.") + key;
  const std::vector<float> ref = test::as_floats(tensors_->at(tname));
  const int n = c.size / step;
  ASSERT_EQ(ref.size(), 3u * n * n);
  double max_diff = 0.0;
  int mismatches = 0;
  for (int ch = 0; ch < 3; ++ch) {
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        const float a = out[(static_cast<size_t>(ch) * c.size + y * step) * c.size + x * step];
        const float b = ref[(static_cast<size_t>(ch) * n + y) * n + x];
        const double d = std::fabs(static_cast<double>(a) - b);
        max_diff = std::max(max_diff, d);
        mismatches += a != b;
      }
    }
  }
  const std::string sha = test::sha256_hex(out.data(), out.size() * sizeof(float));
  const bool sha_ok = sha == (*manifest_)["image_processor"][key]["sha256_f32"].get<std::string>();
  std::printf("[ vectors  ] %-28s max_abs_diff=%.9g mismatches=%d/%d full-tensor sha256 %s\n", key.c_str(), max_diff,
              mismatches, 3 * n * n, sha_ok ? "matches" : "DIFFERS");
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  // Bit-exact: the resize is integer arithmetic and the normalisation replays the same fp32 ops.
  EXPECT_EQ(mismatches, 0) << key << " max abs diff " << max_diff;
  EXPECT_TRUE(sha_ok) << key << ": sha256 of the full fp32 output differs from the reference";
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (const char* b : {"torchvision", "pil"}) {
    for (int s : {56, 896}) {
      for (const char* im : {"img_37x53", "img_120x80", "img_56x56"}) v.push_back({b, s, im});
    }
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Processor, ImageProcessorVectors, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return i.param.backend + "_" + std::to_string(i.param.size) + "_" + i.param.image;
                         });

// The manifest records the torchvision-vs-PIL gap at 56 px; our two filters must show the same.
TEST(ImageProcessorVectorsGap, TorchvisionVsPilGapMatchesManifest) {
  const auto manifest = nlohmann::json::parse(test::read_bytes(kDir + "/manifest.json"));
  const auto tensors = test::read_safetensors(kDir + "/images.safetensors");
  for (const char* im : {"img_37x53", "img_120x80", "img_56x56"}) {
    PreprocessOptions tv, pil;
    tv.image_size = pil.image_size = 56;
    pil.filter = ResizeFilter::kPilBilinear;
    const RgbImage raw = raw_image(tensors.at(std::string("raw.") + im));
    const auto a = preprocess(raw, tv);
    const auto b = preprocess(raw, pil);
    double gap = 0.0;
    for (size_t i = 0; i < a.size(); ++i) gap = std::max(gap, std::fabs(static_cast<double>(a[i]) - b[i]));
    const double want =
        manifest["image_processor"][std::string("torchvision_vs_pil.56.") + im + ".max_abs_diff"].get<double>();
    EXPECT_NEAR(gap, want, 1e-7) << im;
  }
}

}  // namespace
}  // namespace t5g
