#include "format/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace t5g {

namespace {
// The safetensors reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what) {
  SafetensorsHeader h;
  check(size >= 8, what, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  check(n <= kMaxHeaderSize, what, ": safetensors header length ", n, " is implausible (limit ", kMaxHeaderSize, ")");
  check(n <= size - 8, what, ": truncated safetensors file: header claims ", n, " bytes but the file has ",
        size - 8, " after the length prefix");
  h.header_size = n;
  const char* js = reinterpret_cast<const char*>(data + 8);
  nlohmann::json j = nlohmann::json::parse(js, js + n, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), what, ": safetensors header is not valid JSON");
  check(j.is_object(), what, ": safetensors header is not a JSON object");
  const uint64_t data_size = size - 8 - n;

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      check(v.is_object(), what, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        check(m.value().is_string(), what, ": __metadata__ value of '", m.key(), "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    check(v.is_object(), what, ": entry '", name, "' is not an object");
    TensorInfo t;
    t.name = name;
    auto dt = v.find("dtype");
    check(dt != v.end() && dt->is_string(), what, ": tensor '", name, "' has no dtype string");
    auto parsed = dtype_from_string(dt->get<std::string>());
    check(parsed.has_value(), what, ": tensor '", name, "' has unknown dtype '", dt->get<std::string>(), "'");
    t.dtype = *parsed;
    auto sh = v.find("shape");
    check(sh != v.end() && sh->is_array(), what, ": tensor '", name, "' has no shape array");
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      check(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), what, ": tensor '", name,
            "' has an invalid dimension ", d.dump());
      const uint64_t dim = d.get<uint64_t>();
      check(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), what, ": tensor '", name,
            "' dimension too large");
      t.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
      numel *= dim;
    }
    check(!overflow, what, ": tensor '", name, "' shape ", shape_str(t.shape), " overflows");
    auto off = v.find("data_offsets");
    check(off != v.end() && off->is_array() && off->size() == 2 && (*off)[0].is_number_unsigned() &&
              (*off)[1].is_number_unsigned(),
          what, ": tensor '", name, "' has no valid data_offsets [begin, end]");
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    check(t.begin <= t.end, what, ": tensor '", name, "' data_offsets [", t.begin, ", ", t.end, "] are reversed");
    const uint64_t esize = static_cast<uint64_t>(dtype_size(t.dtype));
    check(numel <= std::numeric_limits<uint64_t>::max() / esize, what, ": tensor '", name, "' is too large");
    check(t.end - t.begin == numel * esize, what, ": tensor '", name, "' has ", t.end - t.begin, " bytes but dtype ",
          dtype_name(t.dtype), " x shape ", shape_str(t.shape), " needs ", numel * esize);
    check(t.end <= data_size, what, ": tensor '", name, "' data [", t.begin, ", ", t.end,
          ") lies outside the file's data section (", data_size, " bytes; truncated file?)");
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < h.tensors.size(); ++i) {
    const TensorInfo& a = h.tensors[i - 1];
    const TensorInfo& b = h.tensors[i];
    check(b.begin >= a.end || a.begin == a.end || b.begin == b.end, what, ": tensors '", a.name, "' and '", b.name,
          "' overlap in the file");
  }
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  header_ = parse_safetensors_header(file_.data(), file_.size(), path);
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  // Tensors whose size is a multiple of 64 bytes first (by name), then the others: with the data
  // section starting on a 64-byte boundary (below), every matrix of the first kind starts on a cache line,
  // so the decode kernels' 64-byte loads never straddle two lines. (The format allows no gaps between
  // tensors, so this order is the way to align them.)
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
    const bool a64 = a->nbytes % 64 == 0, b64 = b->nbytes % 64 == 0;
    return a64 != b64 ? a64 : a->name < b->name;
  });
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto* t : order) {
    int64_t numel = 1;
    for (int64_t d : t->shape) numel *= d;
    check(static_cast<size_t>(numel * dtype_size(t->dtype)) == t->nbytes, "write_safetensors: tensor '", t->name,
          "' has ", t->nbytes, " bytes, its shape needs ", numel * dtype_size(t->dtype));
    offsets.push_back(offset);
    j[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string header = j.dump();
  while ((8 + header.size()) % 64 != 0) header.push_back(' ');  // data section starts 64-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(static_cast<bool>(out), "cannot create ", tmp);
    uint8_t len[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto* t : order) out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
    out.flush();
    check(static_cast<bool>(out), "cannot write ", tmp, " (disk full?)");
  }
  check(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path);
}

}  // namespace t5g
