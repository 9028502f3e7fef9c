// Typed access to nlohmann::json fields with errors that name the file and the field path
// (e.g. "tokenizer.json: decoder.decoders[1].content: expected a string").
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace t5g::jf {

using json = nlohmann::json;

// `where` is the path of `obj` itself, e.g. "/x/tokenizer.json: normalizer".
const json& get(const json& obj, const char* key, const std::string& where);
// nullptr when the key is absent (or obj is not an object).
const json* find(const json& obj, const char* key);

std::string as_string(const json& v, const std::string& where);
bool as_bool(const json& v, const std::string& where);
int64_t as_int(const json& v, const std::string& where, int64_t min, int64_t max);

std::string get_string(const json& obj, const char* key, const std::string& where);
bool get_bool(const json& obj, const char* key, const std::string& where, bool dflt);
// The "type" member of a tagged object.
std::string type_of(const json& obj, const std::string& where);

// HF Pattern: {"String": "..."} (literal) or {"Regex": "..."}; only literals are supported.
std::string literal_pattern(const json& obj, const std::string& where);

}  // namespace t5g::jf
