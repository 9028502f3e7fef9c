#include "format/dtype.h"

namespace t5g {

namespace {
struct Entry {
  DType dtype;
  const char* name;
  int64_t size;
};
constexpr Entry kTable[] = {
    {DType::kF32, "F32", 4}, {DType::kBF16, "BF16", 2}, {DType::kF16, "F16", 2}, {DType::kF64, "F64", 8},
    {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},   {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};
}  // namespace

std::optional<DType> dtype_from_string(std::string_view s) {
  for (const Entry& e : kTable)
    if (s == e.name) return e.dtype;
  return std::nullopt;
}

const char* dtype_name(DType d) {
  for (const Entry& e : kTable)
    if (e.dtype == d) return e.name;
  return "?";
}

int64_t dtype_size(DType d) {
  for (const Entry& e : kTable)
    if (e.dtype == d) return e.size;
  return 0;
}

}  // namespace t5g
