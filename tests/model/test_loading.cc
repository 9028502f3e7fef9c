// Loading checkpoints: layouts the hub uses (sharded, tied tensors stored, text_model. segment)
// load and compute the same; every broken input is a clear t5g::Error naming what is at fault.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <span>

#include <nlohmann/json.hpp>

#include "../support/case_file.h"
#include "format/safetensors.h"
#include "model/decoder.h"
#include "model/model.h"
#include "t5g/error.h"
#include "util/mapped_file.h"

namespace t5g {
namespace {

const std::string kTiny = test::vectors_dir() + "/tiny/model";

struct Tensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
using TensorMap = std::map<std::string, Tensor>;

TensorMap read_all(const std::string& path) {
  SafetensorsFile f(path);
  TensorMap m;
  for (const TensorInfo& t : f.header().tensors) {
    const uint8_t* d = f.tensor_data(t);
    m[t.name] = {t.dtype, t.shape, std::vector<uint8_t>(d, d + (t.end - t.begin))};
  }
  return m;
}

void write_all(const std::string& path, const TensorMap& m) {
  std::vector<TensorToWrite> ts;
  for (const auto& [name, t] : m) ts.push_back({name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  write_safetensors(path, ts);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A fresh copy of the tiny checkpoint in a temp folder, its tensors edited by `edit`.
std::string make_variant(const std::string& name, const std::function<void(TensorMap&)>& edit = {}) {
  const std::string dir = std::string(T5G_TEST_TMP) + "/ckpt_" + name;
  ::mkdir(dir.c_str(), 0755);
  ::unlink((dir + "/model.safetensors").c_str());
  ::unlink((dir + "/model.safetensors.index.json").c_str());
  TensorMap m = read_all(kTiny + "/model.safetensors");
  if (edit) edit(m);
  write_all(dir + "/model.safetensors", m);
  write_text(dir + "/config.json", read_text_file(kTiny + "/config.json"));
  write_text(dir + "/generation_config.json", read_text_file(kTiny + "/generation_config.json"));
  return dir;
}

std::string load_error(const std::string& dir) {
  try {
    load_model(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Teacher-forced logits of text_single: a checkpoint variant must compute exactly these.
std::vector<float> logits_of(const LoadedModel& m) {
  test::CaseFile cf(test::vectors_dir() + "/tiny/cases/text_single.safetensors");
  auto ids = cf.get("in.input_ids"), dec = cf.get("in.decoder_input_ids");
  std::vector<int32_t> in(ids.i.begin(), ids.i.end()), d(dec.i.begin(), dec.i.end());
  auto enc = run_encoder(m.weights, m.config, EncoderInput{in.data(), static_cast<int64_t>(in.size()), nullptr, 0});
  DecoderState st = start_decoder(m.weights, m.config, enc.data(), static_cast<int64_t>(in.size()));
  std::vector<float> hidden, logits(d.size() * m.config.decoder.vocab_size);
  decoder_forward(m.weights, m.config, {&st}, {std::span<const int32_t>(d)}, hidden);
  lm_head(m.weights, m.config, hidden.data(), static_cast<int64_t>(d.size()), logits.data());
  return logits;
}

TEST(Loading, TiedTensorsStoredAndTextModelSegment) {
  const auto base = logits_of(*load_model(kTiny));
  const std::string dir = make_variant("tied", [](TensorMap& m) {
    m["model.decoder.embed_tokens.weight"] = m["model.encoder.embed_tokens.weight"];
    m["model.decoder.embed_tokens.eoi_embedding"] = m["model.encoder.embed_tokens.eoi_embedding"];
    m["lm_head.out_proj.weight"] = m["model.encoder.embed_tokens.weight"];
    // later transformers builds: model.encoder.text_model.*
    TensorMap renamed;
    for (auto& [k, v] : m) {
      const std::string p = "model.encoder.layers.";
      renamed[k.rfind(p, 0) == 0 ? "model.encoder.text_model.layers." + k.substr(p.size()) : k] = v;
    }
    m.swap(renamed);
  });
  EXPECT_EQ(logits_of(*load_model(dir)), base);
}

TEST(Loading, ShardedCheckpoint) {
  const auto base = logits_of(*load_model(kTiny));
  const std::string dir = make_variant("sharded");
  TensorMap all = read_all(dir + "/model.safetensors");
  ::unlink((dir + "/model.safetensors").c_str());
  TensorMap s1, s2;
  nlohmann::json wm;
  int i = 0;
  for (auto& [k, v] : all) {
    const bool first = (i++ % 2) == 0;
    (first ? s1 : s2)[k] = v;
    wm[k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_all(dir + "/model-00001-of-00002.safetensors", s1);
  write_all(dir + "/model-00002-of-00002.safetensors", s2);
  write_text(dir + "/model.safetensors.index.json", nlohmann::json{{"metadata", {}}, {"weight_map", wm}}.dump());
  EXPECT_EQ(logits_of(*load_model(dir)), base);

  ::unlink((dir + "/model-00002-of-00002.safetensors").c_str());
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("model-00002-of-00002.safetensors"), std::string::npos) << err;
}

TEST(Loading, MissingTensorIsNamed) {
  const std::string dir = make_variant("missing", [](TensorMap& m) { m.erase("model.decoder.layers.1.mlp.up_proj.weight"); });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("'model.decoder.layers.1.mlp.up_proj.weight' is missing"), std::string::npos) << err;
}

TEST(Loading, WrongShapeIsNamed) {
  const std::string dir = make_variant("shape", [](TensorMap& m) {
    Tensor& t = m["model.encoder.layers.2.self_attn.k_proj.weight"];
    t.shape = {32, 96};  // same bytes, wrong shape
  });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("model.encoder.layers.2.self_attn.k_proj.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[32, 96]"), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 48]"), std::string::npos) << err;
}

TEST(Loading, UnsupportedWeightDtypeIsNamed) {
  const std::string dir = make_variant("dtype", [](TensorMap& m) { m["model.decoder.norm.weight"].dtype = DType::kI32; });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("model.decoder.norm.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("I32"), std::string::npos) << err;
}

TEST(Loading, TruncatedSafetensors) {
  const std::string dir = make_variant("truncated");
  const std::string p = dir + "/model.safetensors";
  const std::string bytes = read_text_file(p);
  write_text(p, bytes.substr(0, bytes.size() / 2));
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("outside the file"), std::string::npos) << err;
}

TEST(Loading, ConfigErrorsNameTheField) {
  const std::string dir = make_variant("config");
  const std::string cfg = read_text_file(kTiny + "/config.json");
  write_text(dir + "/config.json", cfg.substr(0, cfg.size() / 2));
  EXPECT_NE(load_error(dir).find("config.json: not valid JSON"), std::string::npos) << load_error(dir);

  nlohmann::json j = nlohmann::json::parse(cfg);
  j["decoder"]["hidden_size"] = "big";
  write_text(dir + "/config.json", j.dump());
  EXPECT_NE(load_error(dir).find("decoder.hidden_size: expected an integer"), std::string::npos) << load_error(dir);

  j = nlohmann::json::parse(cfg);
  j["decoder"]["layer_types"] = {"sliding_attention"};
  write_text(dir + "/config.json", j.dump());
  EXPECT_NE(load_error(dir).find("layer_types has 1 entries"), std::string::npos) << load_error(dir);

  j = nlohmann::json::parse(cfg);
  j["decoder"]["rope_parameters"]["full_attention"]["rope_type"] = "yarn";
  write_text(dir + "/config.json", j.dump());
  EXPECT_NE(load_error(dir).find("'yarn' is not supported"), std::string::npos) << load_error(dir);

  j = nlohmann::json::parse(cfg);
  j["decoder"]["hidden_size"] = 64;  // must equal the encoder's
  write_text(dir + "/config.json", j.dump());
  EXPECT_NE(load_error(dir).find("hidden_size"), std::string::npos) << load_error(dir);

  j = nlohmann::json::parse(cfg);
  j["unknown_extra_field"] = {{"anything", 1}};
  write_text(dir + "/config.json", j.dump());
  EXPECT_EQ(load_error(dir), "");

  ::unlink((dir + "/config.json").c_str());
  EXPECT_NE(load_error(dir).find("config.json"), std::string::npos);
}

TEST(Loading, GenerationConfigEosList) {
  const std::string dir = make_variant("genconfig");
  write_text(dir + "/generation_config.json", R"({"decoder_start_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0})");
  EXPECT_EQ(load_model(dir)->generation.eos_token_ids, (std::vector<int32_t>{1, 106}));
  write_text(dir + "/generation_config.json", R"({"eos_token_id": [1, 9999]})");
  EXPECT_NE(load_error(dir).find("eos_token_id 9999 is outside the vocabulary"), std::string::npos);
  ::unlink((dir + "/generation_config.json").c_str());
  auto m = load_model(dir);  // absent: the model config's ids
  EXPECT_EQ(m->generation.decoder_start_token_id, 2);
  EXPECT_EQ(m->generation.eos_token_ids, std::vector<int32_t>{1});
}

TEST(Loading, MissingFolderOrWeights) {
  EXPECT_NE(load_error("/nonexistent/model").find("/nonexistent/model"), std::string::npos);
  const std::string dir = make_variant("noweights");
  ::unlink((dir + "/model.safetensors").c_str());
  EXPECT_NE(load_error(dir).find("no model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace t5g
