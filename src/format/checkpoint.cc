#include "format/checkpoint.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace t5g {

namespace {
bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

bool Checkpoint::has_file(const std::string& name) const { return is_file(file_path(name)); }

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  check(is_dir(dir_), "model folder ", dir_, " does not exist or is not a directory");
  std::vector<std::string> shard_names;
  const std::string index_path = file_path("model.safetensors.index.json");
  if (has_file("model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else if (is_file(index_path)) {
    nlohmann::json j = nlohmann::json::parse(read_text_file(index_path), nullptr, false);
    check(!j.is_discarded() && j.is_object(), index_path, ": not valid JSON");
    auto wm = j.find("weight_map");
    check(wm != j.end() && wm->is_object(), index_path, ": no \"weight_map\" object");
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      check(it.value().is_string(), index_path, ": weight_map entry '", it.key(), "' is not a file name");
      const std::string shard = it.value().get<std::string>();
      check(shard.find('/') == std::string::npos && shard.find("..") == std::string::npos, index_path,
            ": shard name '", shard, "' must be a plain file name");
      bool seen = false;
      for (const auto& s : shard_names) seen = seen || s == shard;
      if (!seen) shard_names.push_back(shard);
    }
    check(!shard_names.empty(), index_path, ": weight_map is empty");
  } else {
    fail("no model.safetensors or model.safetensors.index.json in ", dir_);
  }
  for (const std::string& s : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>(file_path(s)));
    const size_t fi = files_.size() - 1;
    for (const TensorInfo& t : files_.back()->header().tensors) {
      auto [it, inserted] = index_.emplace(t.name, std::make_pair(fi, &t));
      check(inserted, "tensor '", t.name, "' appears in both ", files_[it->second.first]->path(), " and ",
            files_[fi]->path());
    }
  }
}

TensorRef Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return {};
  const SafetensorsFile& f = *files_[it->second.first];
  return {it->second.second, f.tensor_data(*it->second.second), &f.path()};
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

uint64_t Checkpoint::total_tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& kv : index_) n += kv.second.second->end - kv.second.second->begin;
  return n;
}

}  // namespace t5g
