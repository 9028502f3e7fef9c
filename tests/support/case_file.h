// Reads reference tensors (int64 inputs, fp32 outputs) from a case .safetensors of tests/data/vectors.
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "util/error.h"

namespace t5g::test {

struct Array {
  std::vector<int64_t> shape;
  std::vector<float> f;      // F32 data
  std::vector<int64_t> i;    // I64 data
  int64_t dim(size_t k) const { return shape.at(k); }
};

class CaseFile {
 public:
  explicit CaseFile(const std::string& path) : file_(path) {}
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }
  Array get(const std::string& name) const {
    const TensorInfo* t = file_.find(name);
    check(t != nullptr, file_.path(), ": no tensor ", name);
    Array a;
    a.shape = t->shape;
    const uint8_t* d = file_.tensor_data(*t);
    const size_t n = static_cast<size_t>(t->numel());
    if (t->dtype == DType::kF32) {
      a.f.resize(n);
      std::memcpy(a.f.data(), d, n * 4);
    } else if (t->dtype == DType::kI64) {
      a.i.resize(n);
      std::memcpy(a.i.data(), d, n * 8);
    } else {
      fail(file_.path(), ": tensor ", name, " has unexpected dtype");
    }
    return a;
  }

 private:
  SafetensorsFile file_;
};

// Batch row b of a padded reference input ([B, L] ids and attention mask): the ids where the mask
// is 1, and the position of the first of them in the padded row (> 0 for a left-padded row; our
// engine runs each row at its own length, with that position offset).
struct UnpaddedRow {
  std::vector<int32_t> ids;
  int64_t first = -1;
};
inline UnpaddedRow unpadded_row(const Array& ids, const Array& mask, int64_t b) {
  const int64_t L = ids.dim(1);
  UnpaddedRow r;
  for (int64_t t = 0; t < L; ++t) {
    if (mask.i[b * L + t] == 0) continue;
    if (r.first < 0) r.first = t;
    r.ids.push_back(static_cast<int32_t>(ids.i[b * L + t]));
  }
  return r;
}

inline std::string data_dir() { return T5G_TEST_DATA; }
inline std::string vectors_dir() { return data_dir() + "/vectors"; }

}  // namespace t5g::test
