#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "util/bf16.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The matrix format of a tensor dtype already checked to be F32, BF16 or F16 (Binder::require).
WeightType weight_type_of(DType d) {
  return d == DType::kF32 ? WeightType::kF32 : d == DType::kBF16 ? WeightType::kBF16 : WeightType::kF16;
}

Precision precision_of(DType d) {
  return d == DType::kF32 ? Precision::kF32 : d == DType::kBF16 ? Precision::kBF16 : Precision::kF16;
}

// Looks tensors up under the name variants checkpoints use.
class Binder {
 public:
  Binder(const Checkpoint& c, WeightFormat f, ModelWeights& out) : ckpt_(c), format_(f), out_(out) {}

  // Candidates: `name` itself, then without the leading "model.", then with "text_model."
  // inserted after "model.encoder." (later transformers builds).
  TensorRef find(const std::string& name) const {
    std::vector<std::string> cands{name};
    const std::string enc = "model.encoder.";
    if (name.rfind(enc, 0) == 0) cands.push_back(enc + "text_model." + name.substr(enc.size()));
    const std::string vt = "model.encoder.vision_tower.vision_model.";
    if (name.rfind(vt, 0) == 0) cands.push_back("model.encoder.vision_tower." + name.substr(vt.size()));
    const size_t n = cands.size();
    for (size_t i = 0; i < n; ++i)
      if (cands[i].rfind("model.", 0) == 0) cands.push_back(cands[i].substr(6));
    for (const auto& c : cands) {
      TensorRef r = ckpt_.find(c);
      if (r.info) return r;
    }
    return {};
  }

  TensorRef require(const std::string& name, const std::vector<int64_t>& shape) {
    TensorRef r = find(name);
    check(r.info != nullptr, "tensor '", name, "' is missing from the checkpoint in ", ckpt_.dir());
    check(r.info->shape == shape, "tensor '", r.info->name, "' in ", *r.file, " has shape ", shape_str(r.info->shape),
          ", config.json implies ", shape_str(shape));
    const DType d = r.info->dtype;
    check(d == DType::kF32 || d == DType::kBF16 || d == DType::kF16, "tensor '", r.info->name, "' in ", *r.file,
          " has dtype ", dtype_name(d), "; weights must be F32, BF16 or F16");
    bytes += r.info->end - r.info->begin;
    return r;
  }

  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    TensorRef r = require(name, {rows, cols});
    WeightMatrix w;
    w.type = weight_type_of(r.info->dtype);
    w.rows = rows;
    w.cols = cols;
    w.data = r.data;
    return w;
  }

  // A text-model matrix: used as stored, or converted / quantized to the requested format; a
  // pre-quantized tensor (I8 = Q8, U8 = Q4, with its fp16 scales) is used in place.
  WeightMatrix text_matrix(const std::string& name, int64_t rows, int64_t cols) {
    TensorRef r = find(name);
    check(r.info != nullptr, "tensor '", name, "' is missing from the checkpoint in ", ckpt_.dir());
    WeightMatrix w = (r.info->dtype == DType::kI8 || r.info->dtype == DType::kU8) ? prequantized(r, rows, cols)
                                                                                  : matrix(name, rows, cols);
    const WeightType target = format_ == WeightFormat::kBF16 ? WeightType::kBF16
                              : format_ == WeightFormat::kQ8 ? WeightType::kQ8
                              : format_ == WeightFormat::kQ4 ? WeightType::kQ4
                                                             : w.type;
    if (is_quantized(w.type)) {
      check(w.type == target, "tensor '", r.info->name, "' in ", *r.file, " is stored quantized as ",
            weight_type_name(w.type), " and cannot be loaded as ", weight_format_name(format_),
            " (load it with --weights auto, or quantize the original checkpoint)");
    } else if (w.type != target) {
      w = convert(w, target);
    }
    out_.text_matrices.emplace_back(r.info->name, w);
    return w;
  }

  std::vector<float> vec(const std::string& name, const std::vector<int64_t>& shape) {
    TensorRef r = require(name, shape);
    const int64_t n = r.info->numel();
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[i] = element(r, i);
    return out;
  }

  std::vector<float> vec(const std::string& name, int64_t n) { return vec(name, std::vector<int64_t>{n}); }

  // Gemma RMSNorm gain 1 + w, computed in fp32 as the reference does.
  std::vector<float> gain(const std::string& name, int64_t n) {
    std::vector<float> g = vec(name, n);
    for (float& x : g) x = 1.0f + x;
    return g;
  }

  // Present -> shape checked; absent -> fine (tied tensors alias the encoder's).
  void optional_tied(const std::string& name, const std::vector<int64_t>& shape) {
    TensorRef r = find(name);
    if (!r.info) return;
    require(name, shape);
    out_.tied_aliases.push_back(r.info->name);
    bytes -= r.info->end - r.info->begin;  // never read
  }

  uint64_t bytes = 0;

 private:
  WeightMatrix prequantized(const TensorRef& r, int64_t rows, int64_t cols) {
    WeightMatrix w;
    w.type = r.info->dtype == DType::kI8 ? WeightType::kQ8 : WeightType::kQ4;
    w.rows = rows;
    w.cols = cols;
    const int64_t Q = quant_padded_cols(cols), G = Q / kQuantGroup;
    // The tiles of 16 rows (matmul.h) are stored as [tiles, G, 512] (Q8) or [tiles, G, 256] (Q4) bytes and
    // [tiles, G, 16] scales; a 2-D tensor is the row-major layout of earlier `t5g quantize` versions
    // ([rows, Q] or [rows, Q / 2], scales [rows, G]), retiled at load.
    const bool rowmajor = r.info->shape.size() == 2;
    const std::vector<int64_t> shape = rowmajor ? std::vector<int64_t>{rows, w.type == WeightType::kQ8 ? Q : Q / 2}
                                                : quant_data_shape(w.type, rows, cols);
    check(r.info->shape == shape, "quantized tensor '", r.info->name, "' (", weight_type_name(w.type), ") in ", *r.file,
          " has shape ", shape_str(r.info->shape), ", expected ", shape_str(shape), " for a ", rows, "x", cols,
          " matrix in groups of ", kQuantGroup);
    const std::string sname = quant_scale_name(r.info->name);
    TensorRef s = ckpt_.find(sname);
    check(s.info != nullptr, "quantized tensor '", r.info->name, "' in ", *r.file, " has no scale tensor '", sname, "'");
    const std::vector<int64_t> sshape = rowmajor ? std::vector<int64_t>{rows, G} : quant_scales_shape(rows, cols);
    check(s.info->dtype == DType::kF16, "scale tensor '", sname, "' in ", *s.file, " has dtype ",
          dtype_name(s.info->dtype), "; expected F16");
    check(s.info->shape == sshape, "scale tensor '", sname, "' in ", *s.file, " has shape ", shape_str(s.info->shape),
          ", expected ", shape_str(sshape), " (groups of ", kQuantGroup, ")");
    check(reinterpret_cast<uintptr_t>(s.data) % 2 == 0, "scale tensor '", sname, "' in ", *s.file,
          " is not 2-byte aligned in the file");
    w.data = r.data;
    w.scales = reinterpret_cast<const uint16_t*>(s.data);
    if (rowmajor) {
      uint8_t* data = out_.owned.emplace_back(static_cast<size_t>(quant_data_bytes(w.type, rows, cols))).data();
      uint16_t* sc = reinterpret_cast<uint16_t*>(
          out_.owned.emplace_back(static_cast<size_t>(quant_scale_count(rows, cols) * 2)).data());
      quant_rows_to_tiles(w.type, w.data, w.scales, rows, cols, data, sc);
      w.data = data;
      w.scales = sc;
      bytes += static_cast<uint64_t>(weight_matrix_bytes(w));
      return w;
    }
    bytes += (r.info->end - r.info->begin) + (s.info->end - s.info->begin);
    return w;
  }

  // A dense matrix in another dense format or quantized, into memory owned by the weights.
  WeightMatrix convert(const WeightMatrix& src, WeightType target) {
    WeightMatrix w = src;
    w.type = target;
    bytes -= static_cast<uint64_t>(weight_matrix_bytes(src));
    if (target == WeightType::kBF16) {
      auto& buf = out_.owned.emplace_back(static_cast<size_t>(src.rows * src.cols * 2));
      uint16_t* d = reinterpret_cast<uint16_t*>(buf.data());
#pragma omp parallel
      {
        std::vector<float> row(static_cast<size_t>(src.cols));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < src.rows; ++r) {
          weight_row_f32(src, r, row.data());
          for (int64_t k = 0; k < src.cols; ++k) d[r * src.cols + k] = f32_to_bf16(row[k]);
        }
      }
      w.data = d;
    } else {
      // (Each buffer's address is taken before the next emplace_back moves the outer vector's elements.)
      uint8_t* data = out_.owned.emplace_back(static_cast<size_t>(quant_data_bytes(target, src.rows, src.cols))).data();
      uint16_t* sc = reinterpret_cast<uint16_t*>(
          out_.owned.emplace_back(static_cast<size_t>(quant_scale_count(src.rows, src.cols) * 2)).data());
      quantize_matrix(src, target, data, sc);
      w.data = data;
      w.scales = sc;
    }
    bytes += static_cast<uint64_t>(weight_matrix_bytes(w));
    return w;
  }

  static float element(const TensorRef& r, int64_t i) {
    switch (r.info->dtype) {
      case DType::kF32: {
        float f;
        std::memcpy(&f, r.data + 4 * i, 4);
        return f;
      }
      case DType::kBF16: {
        uint16_t h;
        std::memcpy(&h, r.data + 2 * i, 2);
        return bf16_to_f32(h);
      }
      default: {
        uint16_t h;
        std::memcpy(&h, r.data + 2 * i, 2);
        return f16_to_f32(h);
      }
    }
  }

  const Checkpoint& ckpt_;
  WeightFormat format_;
  ModelWeights& out_;
};

std::vector<TextLayerWeights> bind_text_layers(Binder& b, const std::string& prefix, const TextConfig& c) {
  std::vector<TextLayerWeights> layers(static_cast<size_t>(c.num_layers));
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = prefix + ".layers." + std::to_string(i) + ".";
    TextLayerWeights& l = layers[i];
    l.attn.q = b.text_matrix(p + "self_attn.q_proj.weight", c.q_dim(), H);
    l.attn.k = b.text_matrix(p + "self_attn.k_proj.weight", c.kv_dim(), H);
    l.attn.v = b.text_matrix(p + "self_attn.v_proj.weight", c.kv_dim(), H);
    l.attn.o = b.text_matrix(p + "self_attn.o_proj.weight", H, c.q_dim());
    l.attn.q_norm = b.gain(p + "self_attn.q_norm.weight", hd);
    l.attn.k_norm = b.gain(p + "self_attn.k_norm.weight", hd);
    l.pre_attn_norm = b.gain(p + "pre_self_attn_layernorm.weight", H);
    l.post_attn_norm = b.gain(p + "post_self_attn_layernorm.weight", H);
    l.pre_ff_norm = b.gain(p + "pre_feedforward_layernorm.weight", H);
    l.post_ff_norm = b.gain(p + "post_feedforward_layernorm.weight", H);
    l.mlp.gate = b.text_matrix(p + "mlp.gate_proj.weight", I, H);
    l.mlp.up = b.text_matrix(p + "mlp.up_proj.weight", I, H);
    l.mlp.down = b.text_matrix(p + "mlp.down_proj.weight", H, I);
  }
  return layers;
}

VisionWeights bind_vision(Binder& b, const ModelConfig& cfg) {
  VisionWeights v;
  const std::string p = "model.encoder.vision_tower.vision_model.";
  if (!b.find(p + "embeddings.patch_embedding.weight").info) return v;  // text-only checkpoint
  const VisionConfig& c = cfg.vision;
  const int64_t Hv = c.hidden_size, Iv = c.intermediate_size, P = c.patch_size, C = c.num_channels;
  const int64_t n_patches = (c.image_size / P) * (c.image_size / P);
  v.present = true;
  {
    TensorRef r = b.require(p + "embeddings.patch_embedding.weight", {Hv, C, P, P});
    v.patch.type = weight_type_of(r.info->dtype);
    v.patch.rows = Hv;
    v.patch.cols = C * P * P;
    v.patch.data = r.data;
  }
  v.patch_b = b.vec(p + "embeddings.patch_embedding.bias", Hv);
  v.pos_embed = b.vec(p + "embeddings.position_embedding.weight", {n_patches, Hv});
  v.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
    VisionLayerWeights& w = v.layers[i];
    w.ln1_w = b.vec(l + "layer_norm1.weight", Hv);
    w.ln1_b = b.vec(l + "layer_norm1.bias", Hv);
    w.ln2_w = b.vec(l + "layer_norm2.weight", Hv);
    w.ln2_b = b.vec(l + "layer_norm2.bias", Hv);
    w.q = b.matrix(l + "self_attn.q_proj.weight", Hv, Hv);
    w.k = b.matrix(l + "self_attn.k_proj.weight", Hv, Hv);
    w.v = b.matrix(l + "self_attn.v_proj.weight", Hv, Hv);
    w.o = b.matrix(l + "self_attn.out_proj.weight", Hv, Hv);
    w.q_b = b.vec(l + "self_attn.q_proj.bias", Hv);
    w.k_b = b.vec(l + "self_attn.k_proj.bias", Hv);
    w.v_b = b.vec(l + "self_attn.v_proj.bias", Hv);
    w.o_b = b.vec(l + "self_attn.out_proj.bias", Hv);
    w.fc1 = b.matrix(l + "mlp.fc1.weight", Iv, Hv);
    w.fc1_b = b.vec(l + "mlp.fc1.bias", Iv);
    w.fc2 = b.matrix(l + "mlp.fc2.weight", Hv, Iv);
    w.fc2_b = b.vec(l + "mlp.fc2.bias", Hv);
  }
  v.post_ln_w = b.vec(p + "post_layernorm.weight", Hv);
  v.post_ln_b = b.vec(p + "post_layernorm.bias", Hv);
  const int64_t H = cfg.encoder.hidden_size;
  v.mm_norm = b.gain("model.encoder.multi_modal_projector.mm_soft_emb_norm.weight", Hv);
  {
    TensorRef r = b.require("model.encoder.multi_modal_projector.mm_input_projection_weight", {Hv, H});
    const int64_t es = dtype_size(r.info->dtype);
    v.mm_proj_t_data.resize(static_cast<size_t>(Hv * H * es));
    for (int64_t i = 0; i < Hv; ++i)
      for (int64_t j = 0; j < H; ++j)
        std::memcpy(v.mm_proj_t_data.data() + (j * Hv + i) * es, r.data + (i * H + j) * es, static_cast<size_t>(es));
    v.mm_proj_t.type = weight_type_of(r.info->dtype);
    v.mm_proj_t.rows = H;
    v.mm_proj_t.cols = Hv;
    v.mm_proj_t.data = v.mm_proj_t_data.data();
  }
  return v;
}

}  // namespace

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kAsStored: return "auto";
    case WeightFormat::kBF16: return "bf16";
    case WeightFormat::kQ8: return "int8";
    case WeightFormat::kQ4: return "q4";
  }
  return "?";
}

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "auto" || s.empty()) return WeightFormat::kAsStored;
  if (s == "bf16") return WeightFormat::kBF16;
  if (s == "int8" || s == "q8") return WeightFormat::kQ8;
  if (s == "q4" || s == "int4") return WeightFormat::kQ4;
  fail("unknown weight format '", s, "': expected auto, bf16, int8 or q4");
}

const char* weight_memory_name(WeightMemory m) { return m == WeightMemory::kHugePages ? "huge-pages" : "mapped"; }

WeightMemory parse_weight_memory(const std::string& s) {
  if (s == "auto" || s.empty())
    return transparent_huge_pages_available() ? WeightMemory::kHugePages : WeightMemory::kMapped;
  if (s == "mapped") return WeightMemory::kMapped;
  if (s == "huge-pages") return WeightMemory::kHugePages;
  fail("unknown weight memory '", s, "': expected auto, mapped or huge-pages");
}

std::string quant_scale_name(const std::string& tensor_name) { return tensor_name + "_scale"; }

std::vector<int64_t> quant_data_shape(WeightType type, int64_t rows, int64_t cols) {
  const int64_t G = quant_padded_cols(cols) / kQuantGroup;
  const int64_t group_bytes = type == WeightType::kQ8 ? kQuantGroup : kQuantGroup / 2;
  return {quant_padded_rows(rows) / kQuantTileRows, G, group_bytes * kQuantTileRows};
}

std::vector<int64_t> quant_scales_shape(int64_t rows, int64_t cols) {
  return {quant_padded_rows(rows) / kQuantTileRows, quant_padded_cols(cols) / kQuantGroup, kQuantTileRows};
}

ModelWeights bind_weights(const Checkpoint& ckpt, const ModelConfig& cfg, WeightFormat format) {
  ModelWeights w;
  Binder b(ckpt, format, w);
  const int64_t V = cfg.encoder.vocab_size, H = cfg.encoder.hidden_size;
  const std::string eoi = "model.encoder.embed_tokens.eoi_embedding";
  w.eoi = b.vec(eoi, H);
  // Activations follow the checkpoint's float dtype (the EOI embedding is never quantized).
  w.precision = precision_of(b.find(eoi).info->dtype);
  w.embed = b.text_matrix("model.encoder.embed_tokens.weight", V, H);
  b.optional_tied("model.decoder.embed_tokens.weight", {V, H});
  b.optional_tied("model.decoder.embed_tokens.eoi_embedding", {H});
  b.optional_tied("lm_head.out_proj.weight", {V, H});
  // embed_scale is an fp32 buffer cast to the weight dtype before the multiply.
  w.embed_scale = round_one(static_cast<float>(std::sqrt(static_cast<double>(H))), w.precision);
  w.encoder = bind_text_layers(b, "model.encoder", cfg.encoder);
  w.decoder = bind_text_layers(b, "model.decoder", cfg.decoder);
  w.encoder_norm = b.gain("model.encoder.norm.weight", H);
  w.decoder_norm = b.gain("model.decoder.norm.weight", H);
  w.vision = bind_vision(b, cfg);
  w.bytes = b.bytes;
  return w;
}
namespace {
// W: ModelWeights or const ModelWeights; M: WeightMatrix with the same constness.
template <class M, class W>
std::vector<M*> decode_step_matrices_of(W& w) {
  std::vector<M*> out;
  for (auto& l : w.decoder)
    for (M* m : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o, &l.mlp.gate, &l.mlp.up, &l.mlp.down}) out.push_back(m);
  out.push_back(&w.embed);
  return out;
}
}  // namespace

std::vector<WeightMatrix*> decode_step_matrices(ModelWeights& w) { return decode_step_matrices_of<WeightMatrix>(w); }
std::vector<const WeightMatrix*> decode_step_matrices(const ModelWeights& w) {
  return decode_step_matrices_of<const WeightMatrix>(w);
}

namespace {
// n rounded up to whole cache lines: where the next matrix starts in a buffer of several.
size_t align_up(size_t n) { return (n + AlignedBytes::kAlign - 1) / AlignedBytes::kAlign * AlignedBytes::kAlign; }
}  // namespace

size_t pack_encoder_matrices(ModelWeights& w) {
  if (!gemm_bf16_available() || w.precision != Precision::kBF16) return 0;
  std::vector<WeightMatrix*> mats;
  for (auto& l : w.encoder)
    for (WeightMatrix* m : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o, &l.mlp.gate, &l.mlp.up, &l.mlp.down})
      if (m->type == WeightType::kBF16 && m->gemm_panels == nullptr) mats.push_back(m);
  const auto bytes = [](const WeightMatrix& m) {
    return align_up(static_cast<size_t>(bf16_gemm_panel_words(m.rows, m.cols)) * sizeof(uint32_t));
  };
  size_t total = 0;
  for (const WeightMatrix* m : mats) total += bytes(*m);
  if (total == 0) return 0;
  std::unordered_set<const void*> owned;  // a buffer converted at load stays: `data` must stay valid
  for (const AlignedBytes& b : w.owned) owned.insert(b.data());
  AlignedBytes arena(total);
  size_t off = 0;
  for (WeightMatrix* m : mats) {
    uint32_t* out = reinterpret_cast<uint32_t*>(arena.data() + off);
    off += bytes(*m);
    pack_bf16_gemm_panels(*m, out);
    m->gemm_panels = out;
    // The vdpbf16ps products of every M read the panels now; `data` stays valid (mapped pages fault back in
    // if another path reads it).
    if (!owned.contains(m->data)) release_mapped_pages(m->data, static_cast<size_t>(weight_matrix_bytes(*m)));
  }
  w.owned.push_back(std::move(arena));
  return total;
}

void move_decode_matrices_to_huge_pages(ModelWeights& w) {
  const std::vector<WeightMatrix*> hot = decode_step_matrices(w);
  // A bf16 model whose products run on vdpbf16ps gets its bf16 decode matrices packed into that kernel's
  // panels instead of copied as they are: the decode kernel then streams 16 rows per line (kernels/matmul.h).
  const bool pack = gemm_bf16_available() && w.precision == Precision::kBF16;
  const auto packs = [&](const WeightMatrix& m) { return pack && m.type == WeightType::kBF16; };
  const auto panel_bytes = [](const WeightMatrix& m) {
    return static_cast<size_t>(bf16_gemm_panel_words(m.rows, m.cols)) * sizeof(uint32_t);
  };
  const auto scale_bytes = [](const WeightMatrix& m) {
    return is_quantized(m.type) ? static_cast<size_t>(quant_scale_count(m.rows, m.cols)) * 2 : size_t{0};
  };
  const auto data_bytes = [](const WeightMatrix& m) { return static_cast<size_t>(weight_matrix_data_bytes(m)); };
  size_t total = 0;
  for (const WeightMatrix* m : hot)
    total += packs(*m) ? align_up(panel_bytes(*m)) : align_up(data_bytes(*m)) + align_up(scale_bytes(*m));
  AlignedBytes arena(total);
  std::unordered_map<const void*, size_t> owned_at;  // a buffer converted at load -> its index in w.owned
  for (size_t i = 0; i < w.owned.size(); ++i) owned_at.emplace(w.owned[i].data(), i);
  std::unordered_map<const void*, const void*> moved;  // old address -> new
  std::unordered_map<const void*, const uint32_t*> packed;  // data -> its panels
  size_t off = 0;
  const auto move = [&](const void* src, size_t n) -> const void* {
    if (auto it = moved.find(src); it != moved.end()) return it->second;
    uint8_t* dst = arena.data() + off;
    off += align_up(n);
    constexpr int64_t kBlock = int64_t(1) << 20;
    const int64_t blocks = (static_cast<int64_t>(n) + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 4)
    for (int64_t b = 0; b < blocks; ++b)
      std::memcpy(dst + b * kBlock, static_cast<const uint8_t*>(src) + b * kBlock,
                  static_cast<size_t>(std::min<int64_t>(kBlock, static_cast<int64_t>(n) - b * kBlock)));
    // The source is no longer read: free a converted buffer now (the copy never holds two of them), and
    // drop mapped pages from this process.
    if (auto it = owned_at.find(src); it != owned_at.end()) w.owned[it->second] = AlignedBytes();
    else release_mapped_pages(src, n);
    moved.emplace(src, dst);
    return dst;
  };
  for (WeightMatrix* m : hot) {
    if (packs(*m)) {
      // `data` stays where it is (t5g quantize and the kernels of other ISAs read it): a converted buffer
      // is kept, mapped pages are released (embedding lookups read the panels, weight_row_f32).
      if (auto it = packed.find(m->data); it != packed.end()) {
        m->gemm_panels = it->second;
        continue;
      }
      uint32_t* out = reinterpret_cast<uint32_t*>(arena.data() + off);
      off += align_up(panel_bytes(*m));
      pack_bf16_gemm_panels(*m, out);
      m->gemm_panels = out;
      packed.emplace(m->data, out);
      if (!owned_at.contains(m->data)) release_mapped_pages(m->data, data_bytes(*m));
      continue;
    }
    const size_t sb = scale_bytes(*m);
    m->data = move(m->data, data_bytes(*m));
    if (sb) m->scales = static_cast<const uint16_t*>(move(m->scales, sb));
  }
  for (auto& [name, m] : w.text_matrices) {
    if (auto it = moved.find(m.data); it != moved.end()) m.data = it->second;
    if (auto it = moved.find(m.scales); m.scales && it != moved.end()) m.scales = static_cast<const uint16_t*>(it->second);
  }
  std::erase_if(w.owned, [](const AlignedBytes& b) { return b.data() == nullptr; });
  w.owned.push_back(std::move(arena));
  w.memory = WeightMemory::kHugePages;
}

}  // namespace t5g
