#include "api/prepare_input.h"

#include <cctype>

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "image/preprocess.h"
#include "image/prompt.h"
#include "model/model.h"
#include "model/vision.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g {

namespace {

// Image preprocessing parameters: the checkpoint's processor_config.json / preprocessor_config.json
// when present (keys at the top level or under "image_processor"), else the released values
// (mean = std = 0.5, rescale 1/255) at the vision config's image size.
PreprocessOptions preprocess_options(const LoadedModel& m, const Input& in) {
  PreprocessOptions o;
  o.image_size = static_cast<int>(m.config.vision.image_size);
  o.pan_and_scan = in.pan_and_scan;
  o.filter = in.pil_resize ? ResizeFilter::kPilBilinear : ResizeFilter::kTorchvisionBilinear;
  for (const char* name : {"preprocessor_config.json", "processor_config.json"}) {
    if (!m.checkpoint->has_file(name)) continue;
    const std::string path = m.checkpoint->file_path(name);
    nlohmann::json j = nlohmann::json::parse(read_text_file(path), nullptr, false);
    check(!j.is_discarded() && j.is_object(), path, ": not valid JSON");
    const nlohmann::json& ip = j.contains("image_processor") && j["image_processor"].is_object() ? j["image_processor"] : j;
    auto triple = [&](const char* key, float* out) {
      if (!ip.contains(key)) return;
      const auto& v = ip[key];
      check(v.is_array() && v.size() == 3 && v[0].is_number() && v[1].is_number() && v[2].is_number(), path, ".",
            key, ": expected three numbers");
      for (int i = 0; i < 3; ++i) out[i] = v[i].get<float>();
    };
    triple("image_mean", o.mean);
    triple("image_std", o.std);
    if (ip.contains("rescale_factor") && ip["rescale_factor"].is_number()) o.rescale = ip["rescale_factor"].get<double>();
    if (ip.contains("pan_and_scan_min_crop_size") && ip["pan_and_scan_min_crop_size"].is_number_integer())
      o.pan_and_scan_min_crop_size = ip["pan_and_scan_min_crop_size"].get<int>();
    if (ip.contains("pan_and_scan_max_num_crops") && ip["pan_and_scan_max_num_crops"].is_number_integer())
      o.pan_and_scan_max_num_crops = ip["pan_and_scan_max_num_crops"].get<int>();
    if (ip.contains("pan_and_scan_min_ratio_to_activate") && ip["pan_and_scan_min_ratio_to_activate"].is_number())
      o.pan_and_scan_min_ratio = ip["pan_and_scan_min_ratio_to_activate"].get<double>();
    break;
  }
  return o;
}

RgbImage load_image(const Image& img, bool exif) {
  DecodeOptions d;
  d.apply_exif_orientation = exif;
  if (!img.data.empty())
    return decode_image_memory(img.data.data(), img.data.size(), img.name.empty() ? "image" : img.name, d);
  check(!img.path.empty(), "an image has neither a path nor data");
  return decode_image_file(img.path, d);
}

size_t count_occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

}  // namespace

Model::Prepared Model::prepare(const Input& input, bool features) const {
  const ModelConfig& cfg = m_->config;
  Prepared p;
  const size_t n_images = input.images.size();
  check(n_images == 0 || m_->weights.vision.present, "this checkpoint has no vision tower; it cannot take images");
  const PreprocessOptions popt = preprocess_options(*m_, input);

  // Pixels first: the number of crops decides the prompt's form.
  std::vector<std::vector<std::vector<float>>> pixels;  // per image: original, then crops
  std::vector<int> crops;
  for (const Image& img : input.images) {
    pixels.push_back(preprocess_with_crops(load_image(img, input.apply_exif_orientation), popt));
    crops.push_back(static_cast<int>(pixels.back().size()) - 1);
  }

  if (!input.input_ids.empty()) {
    check(input.prompt.empty(), "an input has both ids and text; give one");
    p.ids = input.input_ids;
  } else {
    check(!input.prompt.empty() || n_images > 0, "an input has neither ids nor text");
    const Tokenizer& tok = tokenizer();
    std::string text = input.prompt;
    if (n_images > 0) {
      // The marker strings are the tokenizer's names of the config's ids (the image placeholder is
      // <unused99> = 256001 in the released vocabulary, not Gemma 3's <image_soft_token>).
      PromptExpansionOptions eo;
      eo.boi_token = tok.id_to_token(cfg.boi_token_id);
      eo.eoi_token = tok.id_to_token(cfg.eoi_token_id);
      eo.image_token = tok.id_to_token(cfg.image_token_id);
      eo.mm_tokens_per_image = static_cast<int>(cfg.mm_tokens_per_image);
      for (int32_t id : {cfg.boi_token_id, cfg.eoi_token_id, cfg.image_token_id}) {
        const std::string s = tok.id_to_token(id);
        check(tok.token_to_id(s) == id, "the tokenizer does not map '", s, "' back to id ", id,
              "; cannot build image prompts from text (give --input-ids)");
      }
      if (count_occurrences(text, eo.boi_token) == 0) {  // images without markers: prepend them
        const std::string markers = image_only_prompt(static_cast<int>(n_images), eo);
        text = text.empty() ? markers : markers + (std::isspace(static_cast<unsigned char>(text[0])) ? "" : " ") + text;
      }
      bool any_crops = false;
      for (int c : crops) any_crops = any_crops || c > 0;
      text = any_crops ? expand_image_prompt_with_crops(text, crops, eo)
                       : expand_image_prompt(text, static_cast<int>(n_images), eo);
    }
    p.ids = tok.encode(text);
  }

  check(static_cast<int64_t>(p.ids.size()) <= cfg.encoder.max_position_embeddings, "the input has ", p.ids.size(),
        " tokens; this model accepts at most ", cfg.encoder.max_position_embeddings,
        " (max_position_embeddings of config.json)");
  int64_t n_views = 0;
  for (const auto& v : pixels) n_views += static_cast<int64_t>(v.size());
  int64_t n_img_tokens = 0;
  for (int32_t id : p.ids) n_img_tokens += id == cfg.image_token_id;
  check(n_img_tokens == n_views * cfg.mm_tokens_per_image, "the input has ", n_img_tokens, " image tokens but ",
        n_views, " image(s) need ", n_views * cfg.mm_tokens_per_image, " (", cfg.mm_tokens_per_image, " each)");
  if (!features) return p;
  for (const auto& views : pixels)
    for (const auto& px : views) {
      std::vector<float> f = image_features(m_->weights, cfg, px.data());
      p.features.insert(p.features.end(), f.begin(), f.end());
      p.feature_rows += cfg.mm_tokens_per_image;
    }
  return p;
}

std::vector<int32_t> Model::input_ids(const Input& input) const { return prepare(input, /*features=*/false).ids; }

}  // namespace t5g
