// Element types of tensors in checkpoint files (the safetensors dtype strings).
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace t5g {

enum class DType { kF32, kBF16, kF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

// Parses a safetensors dtype string ("F32", "BF16", ...); nullopt when unknown.
std::optional<DType> dtype_from_string(std::string_view s);
const char* dtype_name(DType d);
int64_t dtype_size(DType d);

}  // namespace t5g
