// Prompt expansion against the reference processor: the exact expanded texts recorded by
// make_preprocess_vectors.py (Gemma3Processor 5.12.1, pan-and-scan included) and the token ids in
// tests/data/vectors/processor/manifest.json.
#include <gtest/gtest.h>

#include <string>

#include "image/preprocess.h"
#include "image/prompt.h"
#include "test_support.h"
#include "t5g/error.h"

namespace t5g {
namespace {

const nlohmann::json& oracle_prompts() {
  static const nlohmann::json j =
      nlohmann::json::parse(test::read_bytes(std::string(T5G_TEST_DATA) + "/images/oracle_preprocess.json"))
          .at("prompt");
  return j;
}

std::vector<int32_t> unrle(const nlohmann::json& rle) {
  std::vector<int32_t> v;
  for (const auto& p : rle) v.insert(v.end(), p[1].get<size_t>(), p[0].get<int32_t>());
  return v;
}

std::string collapse_runs(std::string s, const PromptExpansionOptions& o) {
  std::string run;
  for (int i = 0; i < o.mm_tokens_per_image; ++i) run += o.image_token;
  for (size_t p = s.find(run); p != std::string::npos; p = s.find(run, p)) s.replace(p, run.size(), "{IMAGE_TOKENS*256}");
  return s;
}

// The reference's crop counts for the images the generator used: 1024x300 (3 crops), 64x64 (0).
int crops_of(int w, int h) {
  PreprocessOptions o;
  return static_cast<int>(pan_and_scan_crops(w, h, o).size());
}

void expect_expansion(const std::string& case_name, const std::string& got) {
  const auto& c = oracle_prompts().at(case_name);
  EXPECT_EQ(collapse_runs(got, {}), c["expanded_text"].get<std::string>()) << case_name;
  EXPECT_EQ(test::sha256_hex(got.data(), got.size()), c["expanded_sha256"].get<std::string>()) << case_name;
}

TEST(ImagePromptOracle, PanAndScanOneImage) {
  ASSERT_EQ(crops_of(1024, 300), 3);
  expect_expansion("pan_and_scan_one", expand_image_prompt_with_crops("<start_of_image> Describe this.", {crops_of(1024, 300)}));
}

TEST(ImagePromptOracle, PanAndScanMixedImages) {
  expect_expansion("pan_and_scan_mixed", expand_image_prompt_with_crops("A <start_of_image> B <start_of_image> C",
                                                                        {crops_of(1024, 300), crops_of(64, 64)}));
}

TEST(ImagePromptOracle, WithoutCrops) {
  expect_expansion("no_crops_two", expand_image_prompt("x<start_of_image>y <start_of_image>", 2));
  expect_expansion("newline_before_marker", expand_image_prompt("line\n<start_of_image>\nnext", 1));
}

TEST(ImagePromptOracle, ImagesWithoutText) {
  // The reference builds " ".join([boi] * n) when it is given no text (text=[] in 5.12.1;
  // text=None raises a TypeError there).
  EXPECT_EQ(image_only_prompt(2), "<start_of_image> <start_of_image>");
  expect_expansion("empty_list_text", expand_image_prompt(image_only_prompt(2), 2));
}

TEST(ImagePromptOracle, CountMismatchIsAnError) {
  for (const char* name : {"empty_string_text", "two_markers_one_image"}) {
    ASSERT_TRUE(oracle_prompts().at(name).contains("error")) << name;
  }
  try {
    expand_image_prompt("", 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Prompt contained 0 image tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("received 1 images"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_image_prompt("<start_of_image><start_of_image>", 1), Error);
  // Deliberate difference: given markers and no images at all, the reference tokenises the text
  // unexpanded ("marker_without_image"); we report the mismatch.
  EXPECT_EQ(oracle_prompts().at("marker_without_image")["expanded_text"], "hello <start_of_image> world");
  EXPECT_THROW(expand_image_prompt("hello <start_of_image> world", 0), Error);
  EXPECT_EQ(expand_image_prompt("no markers", 0), "no markers");
}

TEST(ImagePromptOracle, IdsVariantMatchesTokenisedExpansionWhereDocumented) {
  PromptTokenIds t;
  t.image = 262144;  // the Gemma 3 tokenizer's <image_soft_token>, as in the recorded ids
  const auto& a = oracle_prompts().at("no_crops_two");
  EXPECT_EQ(expand_image_token_ids(unrle(a["unexpanded_ids_rle"]), 2, t), unrle(a["input_ids_rle"]));
  // A newline right before a marker merges with the inserted "\n\n" when the text is tokenised
  // ("\n\n\n" is one token): the ids variant cannot reproduce that, as prompt.h warns.
  const auto& b = oracle_prompts().at("newline_before_marker");
  EXPECT_NE(expand_image_token_ids(unrle(b["unexpanded_ids_rle"]), 1, t), unrle(b["input_ids_rle"]));
  EXPECT_THROW(expand_image_token_ids({2, 255999}, 2, t), Error);
}

// tests/data/vectors/processor/manifest.json: our expanded text, reduced to its special tokens
// and "\n\n", must give the same id sequence as the reference ids reduced the same way.
TEST(ImagePromptManifest, SpecialTokenStructureMatchesReferenceIds) {
  const auto m = nlohmann::json::parse(
      test::read_bytes(std::string(T5G_TEST_DATA) + "/vectors/processor/manifest.json"));
  const auto& notes = m.at("processor_notes");
  PromptExpansionOptions o;
  o.image_token = notes.at("image_token").get<std::string>();
  const int32_t image_id = notes.at("image_token_id"), boi_id = notes["boi"][1], eoi_id = notes["eoi"][1];
  ASSERT_EQ(notes["boi"][0].get<std::string>(), o.boi_token);
  ASSERT_EQ(notes["eoi"][0].get<std::string>(), o.eoi_token);
  EXPECT_EQ(full_image_sequence(o).substr(0, 40), notes.at("full_image_sequence_prefix").get<std::string>());

  auto specials_of_text = [&](const std::string& s) {
    std::vector<int32_t> ids;
    const std::pair<std::string, int32_t> table[] = {
        {o.boi_token, boi_id}, {o.eoi_token, eoi_id}, {o.image_token, image_id}, {"\n\n", 108}};
    for (size_t p = 0; p < s.size();) {
      bool hit = false;
      for (const auto& [str, id] : table) {
        if (s.compare(p, str.size(), str) == 0) {
          ids.push_back(id);
          p += str.size();
          hit = true;
          break;
        }
      }
      if (!hit) ++p;
    }
    return ids;
  };
  auto specials_of_ids = [&](const nlohmann::json& row) {
    std::vector<int32_t> ids;
    for (const auto& v : row) {
      const int32_t id = v;
      if (id == boi_id || id == eoi_id || id == image_id || id == 108) ids.push_back(id);
    }
    return ids;
  };

  const auto& cases = m.at("processor");
  // text, images per sample (the manifest's n_images counts batch samples, not images).
  const std::vector<std::tuple<std::string, std::string, int, int>> checks = {
      {"text_only", "The capital of France is", 0, 0},
      {"image_prompt", "<start_of_image> in this image, there is", 1, 0},
      {"image_batch_padded", "<start_of_image> in this image, there is", 1, 0},
      {"image_batch_padded", "<start_of_image> in this image", 1, 1},
      {"two_images", "first <start_of_image> then <start_of_image> done", 2, 0},
  };
  for (const auto& [name, text, n, row] : checks) {
    const std::string expanded = expand_image_prompt(text, n, o);
    EXPECT_EQ(specials_of_text(expanded), specials_of_ids(cases.at(name).at("input_ids")[row])) << name << " " << row;
    // One image = 256 soft tokens + BOI + EOI + two "\n\n".
    EXPECT_EQ(expanded.size(), text.size() + n * (full_image_sequence(o).size() - o.boi_token.size()));
  }
  ASSERT_TRUE(cases.at("image_prompt_no_boi").contains("error"));
  EXPECT_THROW(expand_image_prompt(" in this image, there is", 1, o), Error);
}

TEST(ImagePrompt, OptionsAreHonoured) {
  PromptExpansionOptions o;
  o.boi_token = "<B>";
  o.eoi_token = "<E>";
  o.image_token = "<i>";
  o.mm_tokens_per_image = 3;
  EXPECT_EQ(full_image_sequence(o), "\n\n<B><i><i><i><E>\n\n");
  EXPECT_EQ(expand_image_prompt("a<B>b", 1, o), "a\n\n<B><i><i><i><E>\n\nb");
  EXPECT_EQ(expand_image_prompt_with_crops("<B>", {2}, o),
            "Here is the original image \n\n<B><i><i><i><E>\n\n and here are some crops to help you see better "
            "\n\n<B><i><i><i><E>\n\n \n\n<B><i><i><i><E>\n\n");
  // Markers are found left to right without overlap, like re.finditer.
  o.boi_token = "aa";
  EXPECT_THROW(expand_image_prompt("aaa", 2, o), Error);
  EXPECT_EQ(expand_image_prompt("aaa", 1, o), "\n\naa<i><i><i><E>\n\na");
  o.boi_token = "";
  EXPECT_THROW(expand_image_prompt("x", 0, o), Error);
}

}  // namespace
}  // namespace t5g
