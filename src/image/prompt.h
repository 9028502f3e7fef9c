// Prompt expansion for images (spec §5.5), as transformers' Gemma3Processor builds the text it
// tokenises: each "<start_of_image>" marker becomes
//     "\n\n<start_of_image>" + "<image_soft_token>" * mm_tokens_per_image + "<end_of_image>\n\n"
// and, for an image that pan-and-scan cut into crops,
//     "Here is the original image " + SEQ + " and here are some crops to help you see better "
//     + " ".join([SEQ] * num_crops)
// (SEQ being the sequence above). No tokenizer involved: tokenise the result.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "t5g/error.h"  // every failure is a t5g::Error

namespace t5g {

struct PromptExpansionOptions {
  std::string boi_token = "<start_of_image>";
  std::string eoi_token = "<end_of_image>";
  std::string image_token = "<image_soft_token>";  // the tokenizer's image placeholder string
  int mm_tokens_per_image = 256;                   // processor image_seq_length
};

// "\n\n" + boi + image_token * mm_tokens_per_image + eoi + "\n\n".
std::string full_image_sequence(const PromptExpansionOptions& options = {});

// The text the reference uses when images come without any text (text=None):
// " ".join([boi] * num_images). An empty string is not "no text": passing "" with images fails
// the marker count in the reference too.
std::string image_only_prompt(int num_images, const PromptExpansionOptions& options = {});

// Expands one prompt holding one marker per image, in order; num_crops[i] is the number of
// pan-and-scan crops of the i-th image (0 without pan-and-scan). Throws t5g::Error when the
// marker count differs from num_crops.size() (the reference raises
// "Prompt contained N image tokens but received M images."). Markers are matched left to right,
// non-overlapping, as re.finditer does.
std::string expand_image_prompt_with_crops(const std::string& text, const std::vector<int>& num_crops,
                                           const PromptExpansionOptions& options = {});

// Same, for `num_images` images without crops.
std::string expand_image_prompt(const std::string& text, int num_images, const PromptExpansionOptions& options = {});

// Ids-level variant for already-tokenised prompts (no crops): every boi id becomes
// newline2, boi, image*mm_tokens_per_image, eoi, newline2. Equal to tokenising the expanded text
// only when the text around each marker does not merge with the inserted "\n\n" (e.g. no newline
// or whitespace run directly before/after a marker); when in doubt, expand the text instead.
struct PromptTokenIds {
  int32_t boi = 255999;
  int32_t eoi = 256000;
  int32_t image = 256001;  // T5Gemma 2 image placeholder id (spec §5.3)
  int32_t newline2 = 108;  // "\n\n"
};
std::vector<int32_t> expand_image_token_ids(const std::vector<int32_t>& ids, int num_images, const PromptTokenIds& tokens,
                                            int mm_tokens_per_image = 256);

}  // namespace t5g
