#include "image/prompt.h"

#include <algorithm>

#include "util/error.h"

namespace t5g {
namespace {

void check_options(const PromptExpansionOptions& o) {
  check(!o.boi_token.empty(), "prompt expansion: boi_token must not be empty");
  check(o.mm_tokens_per_image >= 0, "prompt expansion: mm_tokens_per_image must not be negative, got ",
        o.mm_tokens_per_image);
}

std::vector<size_t> find_markers(const std::string& text, const std::string& marker) {
  std::vector<size_t> at;
  for (size_t p = text.find(marker); p != std::string::npos; p = text.find(marker, p + marker.size())) at.push_back(p);
  return at;
}

}  // namespace

std::string full_image_sequence(const PromptExpansionOptions& o) {
  check_options(o);
  std::string s;
  s.reserve(4 + o.boi_token.size() + o.eoi_token.size() + o.image_token.size() * o.mm_tokens_per_image);
  s += "\n\n";
  s += o.boi_token;
  for (int i = 0; i < o.mm_tokens_per_image; ++i) s += o.image_token;
  s += o.eoi_token;
  s += "\n\n";
  return s;
}

std::string image_only_prompt(int num_images, const PromptExpansionOptions& o) {
  check_options(o);
  check(num_images >= 0, "image_only_prompt: negative image count ", num_images);
  std::string s;
  for (int i = 0; i < num_images; ++i) {
    if (i) s += ' ';
    s += o.boi_token;
  }
  return s;
}

std::string expand_image_prompt_with_crops(const std::string& text, const std::vector<int>& num_crops,
                                           const PromptExpansionOptions& o) {
  check_options(o);
  const std::vector<size_t> at = find_markers(text, o.boi_token);
  if (at.size() != num_crops.size()) {
    fail("Prompt contained ", at.size(), " image tokens (", o.boi_token, ") but received ", num_crops.size(),
         " images.");
  }
  const std::string seq = full_image_sequence(o);
  std::string out;
  size_t last = 0;
  for (size_t i = 0; i < at.size(); ++i) {
    check(num_crops[i] >= 0, "expand_image_prompt_with_crops: negative crop count for image ", i);
    out.append(text, last, at[i] - last);
    if (num_crops[i] > 0) {
      out += "Here is the original image ";
      out += seq;
      out += " and here are some crops to help you see better ";
      for (int c = 0; c < num_crops[i]; ++c) {
        if (c) out += ' ';
        out += seq;
      }
    } else {
      out += seq;
    }
    last = at[i] + o.boi_token.size();
  }
  out.append(text, last, std::string::npos);
  return out;
}

std::string expand_image_prompt(const std::string& text, int num_images, const PromptExpansionOptions& o) {
  check(num_images >= 0, "expand_image_prompt: negative image count ", num_images);
  return expand_image_prompt_with_crops(text, std::vector<int>(static_cast<size_t>(num_images), 0), o);
}

std::vector<int32_t> expand_image_token_ids(const std::vector<int32_t>& ids, int num_images, const PromptTokenIds& t,
                                            int mm_tokens_per_image) {
  check(mm_tokens_per_image >= 0, "expand_image_token_ids: negative mm_tokens_per_image");
  const auto markers = std::count(ids.begin(), ids.end(), t.boi);
  if (markers != num_images) {
    fail("Prompt contained ", markers, " image tokens (id ", t.boi, ") but received ", num_images, " images.");
  }
  std::vector<int32_t> out;
  out.reserve(ids.size() + static_cast<size_t>(markers) * (4 + mm_tokens_per_image));
  for (const int32_t id : ids) {
    if (id != t.boi) {
      out.push_back(id);
      continue;
    }
    out.push_back(t.newline2);
    out.push_back(t.boi);
    out.insert(out.end(), static_cast<size_t>(mm_tokens_per_image), t.image);
    out.push_back(t.eoi);
    out.push_back(t.newline2);
  }
  return out;
}

}  // namespace t5g
