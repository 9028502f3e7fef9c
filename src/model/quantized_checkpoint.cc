#include "model/quantized_checkpoint.h"

#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "format/safetensors.h"
#include "util/error.h"

namespace t5g {

namespace {

DType stored_dtype(WeightType t) {
  switch (t) {
    case WeightType::kF32: return DType::kF32;
    case WeightType::kBF16: return DType::kBF16;
    case WeightType::kF16: return DType::kF16;
    case WeightType::kQ8: return DType::kI8;
    case WeightType::kQ4: return DType::kU8;
  }
  return DType::kF32;
}

// Copies the checkpoint's non-tensor files (config, generation config, tokenizer, processor...).
int copy_side_files(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (!fs::is_regular_file(e.path())) continue;  // follows the hub cache's symlinks
    if (name.ends_with(".safetensors") || name == "model.safetensors.index.json") continue;
    const fs::path dst = fs::path(to) / name;
    fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
    fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    ++n;
  }
  return n;
}
}  // namespace

QuantizedCheckpointStats write_quantized_checkpoint(const LoadedModel& model, WeightFormat format,
                                                    const std::string& out_dir, bool overwrite) {
  namespace fs = std::filesystem;
  const Checkpoint& ck = *model.checkpoint;
  std::error_code ec;
  check(!fs::exists(out_dir) || overwrite, "output folder ", out_dir, " exists (use --force to write into it)");
  check(!fs::equivalent(out_dir, ck.dir(), ec), "the output folder must not be the input checkpoint's folder");
  fs::create_directories(out_dir, ec);
  check(fs::is_directory(out_dir), "cannot create folder ", out_dir);

  std::map<std::string, WeightMatrix> text;
  for (const auto& [name, w] : model.weights.text_matrices) text.emplace(name, w);
  const std::set<std::string> tied(model.weights.tied_aliases.begin(), model.weights.tied_aliases.end());
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : ck.tensor_names()) {
    if (tied.count(name)) continue;
    if (name.ends_with("_scale") && text.count(name.substr(0, name.size() - 6))) continue;  // rewritten below
    auto it = text.find(name);
    if (it == text.end()) {  // as stored
      const TensorRef r = ck.find(name);
      tensors.push_back({name, r.info->dtype, r.info->shape, r.data, static_cast<size_t>(r.info->end - r.info->begin)});
      continue;
    }
    const WeightMatrix& w = it->second;
    if (!is_quantized(w.type)) {
      tensors.push_back({name, stored_dtype(w.type), {w.rows, w.cols}, w.data, static_cast<size_t>(weight_matrix_bytes(w))});
      continue;
    }
    tensors.push_back({name, stored_dtype(w.type), quant_data_shape(w.type, w.rows, w.cols), w.data,
                       static_cast<size_t>(quant_data_bytes(w.type, w.rows, w.cols))});
    tensors.push_back({quant_scale_name(name), DType::kF16, quant_scales_shape(w.rows, w.cols), w.scales,
                       static_cast<size_t>(quant_scale_count(w.rows, w.cols) * 2)});
  }
  const std::string path = out_dir + "/model.safetensors";
  fs::remove(out_dir + "/model.safetensors.index.json", ec);
  write_safetensors(path, tensors,
                    {{"format", "pt"},
                     {"t5g.weights", weight_format_name(format)},
                     {"t5g.quant_group", std::to_string(kQuantGroup)},
                     {"t5g.quant_layout", "tiles16"}});
  QuantizedCheckpointStats st;
  st.tensors = static_cast<int64_t>(tensors.size());
  st.files_copied = copy_side_files(ck.dir(), out_dir);
  st.bytes = fs::file_size(path);
  return st;
}

}  // namespace t5g
