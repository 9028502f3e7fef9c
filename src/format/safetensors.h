// safetensors files: an 8-byte little-endian header length, a JSON header describing every
// tensor (dtype, shape, byte range), then the raw data. Files are memory-mapped and tensors are
// used in place; every header field is validated before any pointer into the data is formed.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "util/mapped_file.h"

namespace t5g {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  int64_t numel() const;
};

struct SafetensorsHeader {
  uint64_t header_size = 0;  // JSON bytes (excluding the 8-byte length)
  std::vector<TensorInfo> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_offset() const { return 8 + header_size; }
};

// Parses and validates the header of a safetensors file held in [data, data+size):
// the length prefix, the JSON, known dtypes, non-negative shapes, byte ranges that match
// dtype x shape, lie inside the file and do not overlap. `what` names the file in errors.
// Throws t5g::Error; never reads outside the buffer. This is the function the fuzz test drives.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what);

// A mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* tensor_data(const TensorInfo& t) const { return file_.data() + header_.data_offset() + t.begin; }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// A tensor to write: the caller's bytes (size must equal numel x dtype size).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};

// Writes a safetensors file (tensors sorted by name, data 8-byte aligned), atomically: to a
// temporary name first, then renamed.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace t5g
