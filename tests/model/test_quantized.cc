// Weight formats other than the stored one (--weights bf16 | int8 | q4): the accuracy cost against
// the reference fp32 outputs, pre-quantized checkpoints (t5g quantize) computing exactly what
// quantizing at load computes, and clear errors for malformed quantized tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <utility>

#include "../support/case_file.h"
#include "format/safetensors.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/quantized_checkpoint.h"
#include "t5g/error.h"
#include "util/aligned_bytes.h"

namespace t5g {
namespace {

using test::Array;
using test::CaseFile;

struct LogprobError {
  double max_abs = 0;      // max |log p_ours - log p_ref| over every vocabulary entry and position
  double target_mean = 0;  // mean |Δ log p| of the reference's next token (the greedy choice)
  double target_max = 0;
  int64_t argmax_agree = 0, positions = 0;
};

void log_softmax_row(const float* x, int64_t n, std::vector<double>& out) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - mx);
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - mx - std::log(s);
}

// Teacher-forced log-probabilities of every unpadded row of a text case against the reference logits.
LogprobError measure(const LoadedModel& m, const CaseFile& cf) {
  const ModelConfig& cfg = m.config;
  const int64_t V = cfg.decoder.vocab_size;
  Array ids = cf.get("in.input_ids"), mask = cf.get("in.attention_mask"), dec_ids = cf.get("in.decoder_input_ids");
  Array ref = cf.get("out.logits");
  const int64_t B = ids.dim(0), T = dec_ids.dim(1);
  LogprobError e;
  std::vector<double> lo, lr;
  for (int64_t b = 0; b < B; ++b) {
    const test::UnpaddedRow row = test::unpadded_row(ids, mask, b);
    const int64_t n = static_cast<int64_t>(row.ids.size());
    std::vector<float> enc = run_encoder(m.weights, cfg, EncoderInput{row.ids.data(), n, nullptr, 0, row.first});
    DecoderState st = start_decoder(m.weights, cfg, enc.data(), n, m.cross_kv);
    std::vector<int32_t> dec(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) dec[t] = static_cast<int32_t>(dec_ids.i[b * T + t]);
    std::vector<float> hidden, logits(static_cast<size_t>(T * V));
    decoder_forward(m.weights, cfg, {&st}, {std::span<const int32_t>(dec)}, hidden);
    lm_head(m.weights, cfg, hidden.data(), T, logits.data());
    for (int64_t t = 0; t < T; ++t) {
      log_softmax_row(logits.data() + t * V, V, lo);
      log_softmax_row(ref.f.data() + (b * T + t) * V, V, lr);
      const int64_t target = std::max_element(lr.begin(), lr.end()) - lr.begin();
      for (int64_t j = 0; j < V; ++j) e.max_abs = std::max(e.max_abs, std::fabs(lo[j] - lr[j]));
      const double dt = std::fabs(lo[target] - lr[target]);
      e.target_mean += dt;
      e.target_max = std::max(e.target_max, dt);
      e.argmax_agree += (std::max_element(lo.begin(), lo.end()) - lo.begin()) == target;
      ++e.positions;
    }
  }
  return e;
}

struct Bound {
  WeightFormat format;
  double max_abs, target_mean;  // asserted upper bounds (see kBounds)
};

// Bounds on the tiny random checkpoints. They amplify weight errors strongly: bf16 rounding of the
// weights alone moves log-probs by up to 0.14 (the reference's own bf16-vs-fp32 logit gap is 0.13-0.28).
// Measured (Release, AVX2 kernels; decode-shaped products quantize activations to int8 per group; in
// brackets the plain-loop kernels, T5G_ISA=scalar, fp32 activations; in braces AVX-512 with VNNI, where
// the encoder's products quantize activations too), max |dlogp| / target mean:
//   tiny:         bf16 0.135 / 0.017   int8 0.97 (0.97) {1.02} / 0.068 (0.056) {0.071}   q4 4.24 (4.23) {4.29} / 0.93 (0.94) {0.93}
//   tiny_softcap: bf16 0.104 / 0.008   int8 0.41 (0.36) {0.46} / 0.035 (0.031) {0.039}   q4 3.89 (3.84) {3.99} / 0.57 (0.56) {0.57}
// int8 (max/127 per group of 32) errs ~5x more per weight than bf16, q4 (max/8) ~16x more than int8.
// The bounds leave about 2x headroom.
constexpr Bound kBounds[] = {
    {WeightFormat::kBF16, 0.3, 0.04},
    {WeightFormat::kQ8, 2.0, 0.15},
    {WeightFormat::kQ4, 8.0, 2.0},
};

// The error over the four text cases of a vector folder (max over cases, target mean over positions).
LogprobError measure_cases(const LoadedModel& m, const std::string& vdir) {
  LogprobError total;
  for (std::string kase : {"text_single", "text_batch_pad_right", "text_batch_pad_left", "text_with_eoi"}) {
    CaseFile cf(vdir + "/cases/" + kase + ".safetensors");
    LogprobError e = measure(m, cf);
    total.max_abs = std::max(total.max_abs, e.max_abs);
    total.target_max = std::max(total.target_max, e.target_max);
    total.target_mean += e.target_mean;
    total.argmax_agree += e.argmax_agree;
    total.positions += e.positions;
  }
  total.target_mean /= static_cast<double>(total.positions);
  return total;
}

class QuantizedAccuracy : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizedAccuracy, LogprobsAgainstFp32Reference) {
  const std::string vdir = test::vectors_dir() + "/" + GetParam();
  for (const Bound& bd : kBounds) {
    auto m = load_model(vdir + "/model", bd.format);
    ASSERT_EQ(m->weights.precision, Precision::kF32);
    const LogprobError total = measure_cases(*m, vdir);
    std::printf("[ accuracy ] %s %s: max |dlogp| %.5f, target token |dlogp| mean %.5f max %.5f, argmax agrees %lld/%lld\n",
                GetParam().c_str(), weight_format_name(bd.format), total.max_abs, total.target_mean, total.target_max,
                static_cast<long long>(total.argmax_agree), static_cast<long long>(total.positions));
    EXPECT_LT(total.max_abs, bd.max_abs) << weight_format_name(bd.format);
    EXPECT_LT(total.target_mean, bd.target_mean) << weight_format_name(bd.format);
    EXPECT_GT(total.max_abs, 0.0) << "the format changed nothing: was it applied?";
  }
}

// The bf16 checkpoints quantized (bf16 compute: activations rounded at the reference's points; on
// AVX512_VNNI the encoder's and prefill's products quantize the activations to int8 as decode does,
// elsewhere they take the weights dequantized to fp32), against the same fp32 reference outputs. Measured
// max |dlogp| / target mean, argmax agreement (Release, Zen 5; VNNI, in brackets T5G_ISA=avx2):
//   int8 0.657 (0.571) / 0.064 (0.059), 72 (72) of 80     q4 4.58 (4.88) / 0.930 (0.957), 19 (18) of 80
// (The earlier GEMM of the dequantized weights rounded to bf16 on vdpbf16ps: int8 0.578 / 0.061, q4
// 4.79 / 0.948.) The bounds are the fp32 checkpoints' (kBounds).
TEST(QuantizedAccuracyBf16, TinyBf16CheckpointAgainstFp32Reference) {
  const std::string vdir = test::vectors_dir() + "/tiny";
  for (const Bound& bd : kBounds) {
    if (bd.format == WeightFormat::kBF16) continue;
    auto m = load_model(vdir + "/model_bf16", bd.format);
    ASSERT_EQ(m->weights.precision, Precision::kBF16);
    const LogprobError total = measure_cases(*m, vdir);
    std::printf("[ accuracy ] tiny bf16 checkpoint as %s: max |dlogp| %.5f, target token |dlogp| mean %.5f max %.5f, argmax agrees %lld/%lld\n",
                weight_format_name(bd.format), total.max_abs, total.target_mean, total.target_max,
                static_cast<long long>(total.argmax_agree), static_cast<long long>(total.positions));
    EXPECT_LT(total.max_abs, bd.max_abs) << weight_format_name(bd.format);
    EXPECT_LT(total.target_mean, bd.target_mean) << weight_format_name(bd.format);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, QuantizedAccuracy, ::testing::Values("tiny", "tiny_softcap"));

// The int8 cross K/V cache (--cross-kv int8) on the fp32 checkpoints, weights as stored: its accuracy
// cost against the reference, on its own. Measured (Release, AVX2; in brackets T5G_ISA=scalar), max
// |dlogp| / target-token mean, argmax 80/80 in both:
//   tiny 0.084 (0.084) / 0.0068 (0.0068)   tiny_softcap 0.058 (0.058) / 0.0039 (0.0039)
// (K and V rounded to 1/254 of their row's largest magnitude: about 60% of what bf16 weights alone cost,
// 0.10-0.14 / 0.008-0.017 above). The bounds leave about 2x headroom.
TEST_P(QuantizedAccuracy, Int8CrossKvAgainstFp32Reference) {
  const std::string vdir = test::vectors_dir() + "/" + GetParam();
  auto m = load_model(vdir + "/model");
  m->cross_kv = CrossKvFormat::kInt8;
  const LogprobError total = measure_cases(*m, vdir);
  std::printf("[ accuracy ] %s cross K/V int8: max |dlogp| %.5f, target token |dlogp| mean %.5f, argmax agrees %lld/%lld\n",
              GetParam().c_str(), total.max_abs, total.target_mean, static_cast<long long>(total.argmax_agree),
              static_cast<long long>(total.positions));
  EXPECT_LT(total.max_abs, 0.17);
  EXPECT_LT(total.target_mean, 0.014);
  EXPECT_GT(total.max_abs, 1e-6) << "int8 cross K/V changed nothing: was it applied?";
  // And the decoder state really holds int8 (plus one scale per row and kv head), a quarter of fp32.
  const std::vector<int32_t> ids{2, 17, 33, 99};
  std::vector<float> enc = run_encoder(m->weights, m->config, EncoderInput{ids.data(), 4, nullptr, 0});
  DecoderState st = start_decoder(m->weights, m->config, enc.data(), 4, CrossKvFormat::kInt8);
  const int64_t kvd = m->config.decoder.kv_dim();
  EXPECT_EQ(st.cross->layers[0].kq.size(), static_cast<size_t>(4 * kvd));
  EXPECT_EQ(st.cross->layers[0].ks.size(), static_cast<size_t>(4 * m->config.decoder.num_kv_heads));
  EXPECT_TRUE(st.cross->layers[0].k.empty() && st.cross->layers[0].kb.empty());
}

TEST(CrossKvFormat, ParsesAndRejects) {
  EXPECT_EQ(parse_cross_kv_format("auto"), CrossKvFormat::kAuto);
  EXPECT_EQ(parse_cross_kv_format("int8"), CrossKvFormat::kInt8);
  try {
    parse_cross_kv_format("fp8");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

std::vector<float> encoder_and_logits(const LoadedModel& m) {
  const std::vector<int32_t> ids{2, 17, 33, 99, 45, 7, 256, 12};
  std::vector<float> enc = run_encoder(m.weights, m.config, EncoderInput{ids.data(), 8, nullptr, 0});
  DecoderState st = start_decoder(m.weights, m.config, enc.data(), 8);
  const std::vector<int32_t> dec{0, 5, 9};
  std::vector<float> hidden, out(enc);
  decoder_forward(m.weights, m.config, {&st}, {std::span<const int32_t>(dec)}, hidden);
  std::vector<float> logits(static_cast<size_t>(3 * m.config.decoder.vocab_size));
  lm_head(m.weights, m.config, hidden.data(), 3, logits.data());
  out.insert(out.end(), logits.begin(), logits.end());
  return out;
}

const std::string kTiny = test::vectors_dir() + "/tiny/model";

std::string tmp_dir(const std::string& name) {
  const std::string d = std::string(T5G_TEST_TMP) + "/quant_" + name;
  std::filesystem::remove_all(d);
  return d;
}

TEST(QuantizedCheckpoint, LoadsPrequantizedInPlaceAndComputesTheSame) {
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kQ8, WeightFormat::kQ4}) {
    SCOPED_TRACE(weight_format_name(f));
    auto at_load = load_model(kTiny, f);
    const std::string dir = tmp_dir(weight_format_name(f));
    const QuantizedCheckpointStats st = write_quantized_checkpoint(*at_load, f, dir, false);
    EXPECT_GT(st.tensors, 0);
    EXPECT_TRUE(std::filesystem::exists(dir + "/config.json"));
    auto pre = load_model(dir);  // as stored
    EXPECT_EQ(pre->weights.embed.type, at_load->weights.embed.type);
    EXPECT_EQ(pre->weights.decoder[0].mlp.down.type, at_load->weights.decoder[0].mlp.down.type);
    EXPECT_TRUE(pre->weights.owned.empty()) << "a pre-quantized checkpoint must be used in place";
    EXPECT_EQ(encoder_and_logits(*pre), encoder_and_logits(*at_load));
    if (is_quantized(pre->weights.embed.type)) {
      EXPECT_TRUE(load_model(dir, f)->weights.owned.empty()) << "naming the stored format loads in place too";
      const WeightFormat other = f == WeightFormat::kQ8 ? WeightFormat::kQ4 : WeightFormat::kQ8;
      try {
        load_model(dir, other);
        ADD_FAILURE() << "loading a quantized checkpoint in another format must fail";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("stored quantized"), std::string::npos) << e.what();
      }
    }
    EXPECT_THROW(write_quantized_checkpoint(*at_load, f, dir, false), Error) << "existing folder without overwrite";
  }
}

// A Q8 / Q4 checkpoint from an earlier `t5g quantize` (row-major: Q8 int8 [rows, qcols], Q4 bytes
// [rows, qcols / 2] with elements j and j + 16 of a group in byte j's low and high nibbles; scales
// [rows, groups]) still loads: retiled at load (into owned memory), it computes what the tiled one does.
TEST(QuantizedCheckpoint, RowMajorFromEarlierVersionsIsRetiled) {
  for (WeightFormat fmt : {WeightFormat::kQ8, WeightFormat::kQ4}) {
    SCOPED_TRACE(weight_format_name(fmt));
    auto at_load = load_model(kTiny, fmt);
    const std::string tiled = tmp_dir(std::string("tiled_") + weight_format_name(fmt));
    write_quantized_checkpoint(*at_load, fmt, tiled, false);
    SafetensorsFile f(tiled + "/model.safetensors");
    std::map<std::string, WeightMatrix> quant;
    for (const auto& [name, w] : at_load->weights.text_matrices)
      if (is_quantized(w.type)) quant.emplace(name, w);
    ASSERT_FALSE(quant.empty());
    std::vector<TensorToWrite> out;
    std::vector<std::vector<uint8_t>> data;
    std::vector<std::vector<uint16_t>> scales;
    for (const TensorInfo& t : f.header().tensors) {
      if (t.name.ends_with("_scale") && quant.count(t.name.substr(0, t.name.size() - 6))) continue;
      auto it = quant.find(t.name);
      if (it == quant.end()) {
        out.push_back({t.name, t.dtype, t.shape, f.tensor_data(t), static_cast<size_t>(t.end - t.begin)});
        continue;
      }
      const WeightMatrix& w = it->second;
      const bool q8 = w.type == WeightType::kQ8;
      const int64_t Q = quant_padded_cols(w.cols), G = Q / kQuantGroup, rb = q8 ? Q : Q / 2;
      const uint8_t* tiles = static_cast<const uint8_t*>(w.data);
      std::vector<uint8_t>& q = data.emplace_back(static_cast<size_t>(w.rows * rb));
      std::vector<uint16_t>& d = scales.emplace_back(static_cast<size_t>(w.rows * G));
      for (int64_t r = 0; r < w.rows; ++r) {
        for (int64_t k = 0; k < Q; ++k) {
          if (q8) {
            q[r * Q + k] = static_cast<uint8_t>(tiles[q8_byte_index(r, k, G)] - 128);
          } else if (k % kQuantGroup < 16) {  // byte (r, g, j): elements j (low nibble) and j + 16 (high)
            const uint8_t lo = tiles[q4_byte_index(r, k, G)] & 0xf, hi = tiles[q4_byte_index(r, k + 16, G)] >> 4;
            q[r * rb + (k / kQuantGroup) * 16 + k % 16] = static_cast<uint8_t>(lo | (hi << 4));
          }
        }
        for (int64_t g = 0; g < G; ++g) d[r * G + g] = w.scales[quant_scale_index(r, g, G)];
      }
      out.push_back({t.name, q8 ? DType::kI8 : DType::kU8, {w.rows, rb}, q.data(), q.size()});
      out.push_back({quant_scale_name(t.name), DType::kF16, {w.rows, G}, d.data(), d.size() * 2});
    }
    const std::string dir = tmp_dir(std::string("rows_") + weight_format_name(fmt));
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(tiled + "/config.json", dir + "/config.json");
    write_safetensors(dir + "/model.safetensors", out);
    auto rows = load_model(dir);
    EXPECT_EQ(rows->weights.embed.type, at_load->weights.embed.type);
    EXPECT_FALSE(rows->weights.owned.empty()) << "row-major weights are retiled into owned memory";
    EXPECT_EQ(encoder_and_logits(*rows), encoder_and_logits(*at_load));
  }
}

// Rewrites one tensor of a pre-quantized q4 checkpoint and expects a load error mentioning `expect`.
void expect_broken(const std::string& name, const std::function<void(std::map<std::string, TensorToWrite>&,
                                                                       std::vector<std::vector<uint8_t>>&)>& edit,
                   const std::string& expect) {
  SCOPED_TRACE(name);
  const std::string src = tmp_dir("src_" + name);
  write_quantized_checkpoint(*load_model(kTiny, WeightFormat::kQ4), WeightFormat::kQ4, src, false);
  SafetensorsFile f(src + "/model.safetensors");
  std::map<std::string, TensorToWrite> ts;
  for (const TensorInfo& t : f.header().tensors)
    ts[t.name] = {t.name, t.dtype, t.shape, f.tensor_data(t), static_cast<size_t>(t.end - t.begin)};
  std::vector<std::vector<uint8_t>> store;
  edit(ts, store);
  const std::string dir = tmp_dir("broken_" + name);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src + "/config.json", dir + "/config.json");
  std::vector<TensorToWrite> out;
  for (auto& [n, t] : ts) out.push_back(t);
  write_safetensors(dir + "/model.safetensors", out);
  try {
    load_model(dir);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
  }
}

TEST(QuantizedCheckpoint, MalformedTensorsAreClearErrors) {
  const std::string q = "model.decoder.layers.0.mlp.up_proj.weight";
  expect_broken("missing_scale", [&](auto& ts, auto&) { ts.erase(q + "_scale"); }, "has no scale tensor");
  expect_broken("scale_dtype", [&](auto& ts, auto& store) {
    TensorToWrite& t = ts[q + "_scale"];
    store.emplace_back(t.nbytes * 2, 0);
    t = {t.name, DType::kF32, t.shape, store.back().data(), store.back().size()};
  }, "expected F16");
  expect_broken("scale_shape", [&](auto& ts, auto&) {
    TensorToWrite& t = ts[q + "_scale"];  // [tiles, groups, 16]: 8 scales per tile and group
    t.shape = {t.shape[0], t.shape[1], t.shape[2] / 2};
    t.nbytes /= 2;
  }, "groups of 32");
  expect_broken("data_shape", [&](auto& ts, auto&) {
    TensorToWrite& t = ts[q];  // [tiles, groups, 256]: the same bytes in another shape
    t.shape = {t.shape[0], t.shape[1] * 2, t.shape[2] / 2};
  }, "has shape");
}


// --weight-memory huge-pages: the decode step's matrices copied into one huge-page buffer compute
// bit for bit what the mapped (or converted) ones do; every one of them (and its text_matrices entry)
// points into that buffer, the buffers they were converted into are freed, and the others stay.
TEST(WeightMemory, HugePagesComputeTheSameAndMoveOnlyTheDecodeMatrices) {
  for (WeightFormat f : {WeightFormat::kAsStored, WeightFormat::kBF16, WeightFormat::kQ8, WeightFormat::kQ4}) {
    SCOPED_TRACE(weight_format_name(f));
    auto mapped = load_model(kTiny, f, WeightMemory::kMapped);
    auto huge = load_model(kTiny, f, WeightMemory::kHugePages);
    EXPECT_EQ(mapped->weights.memory, WeightMemory::kMapped);
    ASSERT_EQ(huge->weights.memory, WeightMemory::kHugePages);
    EXPECT_EQ(encoder_and_logits(*huge), encoder_and_logits(*mapped));
    const AlignedBytes& arena = huge->weights.owned.back();
    const auto inside = [&](const void* p, int64_t n) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      return b >= arena.data() && b + n <= arena.data() + arena.size();
    };
    const std::vector<const WeightMatrix*> hot = decode_step_matrices(std::as_const(huge->weights));
    EXPECT_EQ(hot.size(), 7 * huge->weights.decoder.size() + 1);
    for (const WeightMatrix* m : hot) {
      EXPECT_TRUE(inside(m->data, weight_matrix_bytes(*m) - (m->scales ? quant_scale_count(m->rows, m->cols) * 2 : 0)));
      if (m->scales) {
        EXPECT_TRUE(inside(m->scales, quant_scale_count(m->rows, m->cols) * 2));
      }
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data) % AlignedBytes::kAlign, 0u);
    }
    EXPECT_FALSE(inside(huge->weights.encoder[0].attn.q.data, 1)) << "the encoder's matrices stay where they were";
    int64_t moved = 0;
    for (const auto& [name, m] : huge->weights.text_matrices) {
      const bool decode = name.find("decoder.") != std::string::npos || name.find("embed_tokens") != std::string::npos;
      EXPECT_EQ(inside(m.data, 1), decode) << name;
      moved += decode;
    }
    EXPECT_EQ(moved, static_cast<int64_t>(hot.size()));
    // Converted at load: the encoder's buffers stay owned, the decode matrices' were freed (not kept twice).
    for (const AlignedBytes& b : huge->weights.owned) EXPECT_NE(b.data(), nullptr);
    if (f != WeightFormat::kAsStored) {
      const size_t per_matrix = is_quantized(mapped->weights.embed.type) ? 2 : 1;  // data (+ scales)
      EXPECT_EQ(huge->weights.owned.size(), mapped->weights.owned.size() - per_matrix * hot.size() + 1);
    } else {
      EXPECT_EQ(huge->weights.owned.size(), 1u);
    }
  }
}

// --weight-memory huge-pages on a bf16 model packs the encoder's projections and the decode step's
// matrices into the vdpbf16ps kernels' panels (where those kernels run): every encoder matrix gets its
// panels in one buffer, every decode-step matrix in the huge-page buffer, where its data stays in the
// checkpoint's mmap (embedding lookups read the panels); an encode long enough for the GEMM (more than
// 8 tokens) gives the same bits as the mapped model, as does the rest of the model (decode steps read the
// panels there and the row-major matrices in the mapped model).
TEST(WeightMemory, HugePagesPackTheBf16EncoderAndDecodeMatrices) {
  const std::string dir = test::vectors_dir() + "/tiny/model_bf16";
  auto mapped = load_model(dir, WeightFormat::kAsStored, WeightMemory::kMapped);
  auto huge = load_model(dir, WeightFormat::kAsStored, WeightMemory::kHugePages);
  ASSERT_EQ(huge->weights.precision, Precision::kBF16);
  const bool packs = gemm_bf16_available();
  const AlignedBytes& arena = huge->weights.owned.back();
  for (const auto& ws : {&mapped->weights, &huge->weights})
    for (const TextLayerWeights& l : ws->encoder)
      for (const WeightMatrix* m : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o, &l.mlp.gate, &l.mlp.up, &l.mlp.down}) {
        ASSERT_EQ(m->gemm_panels != nullptr, packs && ws == &huge->weights);
        if (!m->gemm_panels) continue;
        const uint8_t* p = reinterpret_cast<const uint8_t*>(m->gemm_panels);
        EXPECT_TRUE(p >= arena.data() && p + bf16_gemm_panel_words(m->rows, m->cols) * 4 <= arena.data() + arena.size());
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % AlignedBytes::kAlign, 0u);
      }
  const auto owned = [](const ModelWeights& w, const void* p) {
    const auto a = reinterpret_cast<uintptr_t>(p);
    for (const AlignedBytes& b : w.owned) {
      const auto lo = reinterpret_cast<uintptr_t>(b.data());
      if (a >= lo && a < lo + b.size()) return true;
    }
    return false;
  };
  for (const auto& ws : {&mapped->weights, &huge->weights})
    for (const WeightMatrix* m : decode_step_matrices(*static_cast<const ModelWeights*>(ws))) {
      ASSERT_EQ(m->gemm_panels != nullptr, packs && ws == &huge->weights);
      EXPECT_FALSE(owned(*ws, m->data)) << "bf16 data stays in the checkpoint's mmap";
      if (!m->gemm_panels) continue;
      EXPECT_TRUE(owned(*ws, m->gemm_panels));
      const uint8_t* p = reinterpret_cast<const uint8_t*>(m->gemm_panels);
      EXPECT_FALSE(p >= arena.data() && p < arena.data() + arena.size()) << "in the decode buffer, not the encoder's";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m->gemm_panels) % AlignedBytes::kAlign, 0u);
    }
  std::vector<int32_t> ids(37);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(3 + (i * 7919) % 200);
  const EncoderInput in{ids.data(), static_cast<int64_t>(ids.size()), nullptr, 0};
  EXPECT_EQ(run_encoder(huge->weights, huge->config, in), run_encoder(mapped->weights, mapped->config, in));
  EXPECT_EQ(encoder_and_logits(*huge), encoder_and_logits(*mapped));
}

TEST(WeightMemory, ParsesAndRejects) {
  EXPECT_EQ(parse_weight_memory("mapped"), WeightMemory::kMapped);
  EXPECT_EQ(parse_weight_memory("huge-pages"), WeightMemory::kHugePages);
  EXPECT_EQ(parse_weight_memory("auto"),
            transparent_huge_pages_available() ? WeightMemory::kHugePages : WeightMemory::kMapped);
  try {
    parse_weight_memory("hugepages");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hugepages"), std::string::npos) << e.what();
  }
}

// Buffers of 2 MiB and more come from mmap on a 2 MiB boundary (where huge pages can back them), zeroed
// and writable; smaller ones are cache-line aligned; both free cleanly (checked under ASan).
TEST(WeightMemory, AlignedBytesBigBuffersSitOnHugePageBoundaries) {
  for (size_t n : {size_t(0), size_t(100), AlignedBytes::kHugePage - 1, AlignedBytes::kHugePage,
                   3 * AlignedBytes::kHugePage + 4097}) {
    SCOPED_TRACE(n);
    AlignedBytes b(n);
    EXPECT_EQ(b.size(), n);
    if (n == 0) continue;
    const uintptr_t a = reinterpret_cast<uintptr_t>(b.data());
    EXPECT_EQ(a % (n >= AlignedBytes::kHugePage ? AlignedBytes::kHugePage : AlignedBytes::kAlign), 0u);
    EXPECT_EQ(b.data()[0], 0);
    EXPECT_EQ(b.data()[n - 1], 0);
    EXPECT_EQ(std::count(b.data(), b.data() + n, uint8_t{0}), static_cast<std::ptrdiff_t>(n));
    std::memset(b.data(), 0xab, n);
    AlignedBytes moved = std::move(b);
    EXPECT_EQ(moved.data()[n - 1], 0xab);
  }
}

}  // namespace
}  // namespace t5g
