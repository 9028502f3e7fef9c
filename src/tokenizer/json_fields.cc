#include "tokenizer/json_fields.h"

#include "util/error.h"

namespace t5g::jf {

namespace {
const char* kind(const json& v) { return v.type_name(); }
}  // namespace

const json* find(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json& get(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object()) fail(where, ": expected an object, found ", kind(obj));
  const json* v = find(obj, key);
  if (v == nullptr) fail(where, ": missing field \"", key, "\"");
  return *v;
}

std::string as_string(const json& v, const std::string& where) {
  if (!v.is_string()) fail(where, ": expected a string, found ", kind(v));
  return v.get<std::string>();
}

bool as_bool(const json& v, const std::string& where) {
  if (!v.is_boolean()) fail(where, ": expected true or false, found ", kind(v));
  return v.get<bool>();
}

int64_t as_int(const json& v, const std::string& where, int64_t min, int64_t max) {
  if (!v.is_number_integer()) fail(where, ": expected an integer, found ", kind(v));
  int64_t x;
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) fail(where, ": integer ", u, " out of range");
    x = static_cast<int64_t>(u);
  } else {
    x = v.get<int64_t>();
  }
  if (x < min || x > max) fail(where, ": integer ", x, " out of range [", min, ", ", max, "]");
  return x;
}

std::string get_string(const json& obj, const char* key, const std::string& where) {
  return as_string(get(obj, key, where), where + "." + key);
}

bool get_bool(const json& obj, const char* key, const std::string& where, bool dflt) {
  const json* v = find(obj, key);
  if (v == nullptr || v->is_null()) return dflt;
  return as_bool(*v, where + "." + key);
}

std::string type_of(const json& obj, const std::string& where) { return get_string(obj, "type", where); }

std::string literal_pattern(const json& obj, const std::string& where) {
  if (!obj.is_object()) fail(where, ": expected {\"String\": ...} or {\"Regex\": ...}, found ", kind(obj));
  if (const json* s = find(obj, "String")) return as_string(*s, where + ".String");
  if (find(obj, "Regex") != nullptr) {
    fail(where, ": Regex patterns are not supported (only {\"String\": ...} literals)");
  }
  fail(where, ": expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace t5g::jf
