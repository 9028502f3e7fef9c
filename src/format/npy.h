// NumPy .npy files (format version 1.0, little-endian float32, C order), for embeddings output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace t5g {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// Reads a float32 .npy written by write_npy_f32 (or NumPy with dtype '<f4', C order).
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape);

}  // namespace t5g
