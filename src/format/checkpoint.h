// A checkpoint folder in the Hugging Face hub layout: config.json, generation_config.json,
// and model.safetensors or a sharded model.safetensors.index.json with its shards.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "format/safetensors.h"

namespace t5g {

// A tensor inside a mapped checkpoint file (valid while the Checkpoint lives).
struct TensorRef {
  const TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;
  const std::string* file = nullptr;  // the file it lives in, for error messages
};

class Checkpoint {
 public:
  // Opens dir: maps model.safetensors, or every shard named by model.safetensors.index.json.
  // Throws t5g::Error naming the file at fault.
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string file_path(const std::string& name) const { return dir_ + "/" + name; }
  bool has_file(const std::string& name) const;

  // The tensor of this exact name, or info == nullptr.
  TensorRef find(const std::string& name) const;
  std::vector<std::string> tensor_names() const;
  // Total bytes of tensor data in all mapped files.
  uint64_t total_tensor_bytes() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>> index_;  // name -> (file, tensor)
};

}  // namespace t5g
