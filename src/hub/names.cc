#include "hub/names.h"

#include <cctype>

#include "hub/hub.h"
#include "util/error.h"

namespace t5g::hub {
namespace {

bool is_lower_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One side of "org/name": 1..96 of [A-Za-z0-9_.-], starting and ending with a word character, no "--"/"..".
bool is_valid_name_part(const std::string& s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s)
    if (!is_word_char(c) && c != '-' && c != '.') return false;
  if (!is_word_char(s.front()) || !is_word_char(s.back())) return false;
  return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

// Shared by revisions and file names: '/'-separated parts, none empty, "." or "..", no control characters
// or backslashes (a path separator on other systems).
bool is_safe_relative_path(const std::string& s) {
  if (s.empty() || s.size() > 1024 || s.front() == '/' || s.back() == '/') return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return false;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find('/', start);
    const std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

}  // namespace

bool is_commit_hash(const std::string& s) { return is_lower_hex(s, 40); }
bool is_sha256_hex(const std::string& s) { return is_lower_hex(s, 64); }

bool is_valid_repo_id(const std::string& repo) {
  const size_t slash = repo.find('/');
  if (slash == std::string::npos || repo.find('/', slash + 1) != std::string::npos) return false;
  const std::string name = repo.substr(slash + 1);
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, ".git") == 0) return false;
  return is_valid_name_part(repo.substr(0, slash)) && is_valid_name_part(name);
}

void check_repo_id(const std::string& repo) {
  check(is_valid_repo_id(repo), "invalid hub repo id '", repo,
        "': expected org/name (letters, digits, '-', '_', '.'; at most 96 characters each)");
}

void check_revision(const std::string& revision) {
  bool ok = is_safe_relative_path(revision) && revision.size() <= 256;
  for (char c : revision) ok = ok && !std::isspace(static_cast<unsigned char>(c));
  check(ok, "invalid revision '", revision, "': expected a branch, tag or commit hash");
}

void check_repo_filename(const std::string& filename) {
  check(is_safe_relative_path(filename), "the hub listed an unsafe file name '", filename,
        "' (absolute, empty part, '.' or '..'); refusing to write it");
}

void check_etag(const std::string& etag, const std::string& filename) {
  bool ok = !etag.empty() && etag.size() <= 128 && etag.front() != '.';
  for (char c : etag) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  check(ok, "the hub sent an unusable ETag '", etag, "' for ", filename, " (it names the file in the cache)");
}

std::string repo_folder_name(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) {
    if (c == '/')
      out += "--";
    else
      out += c;
  }
  return out;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace t5g::hub

namespace t5g {

bool looks_like_repo_id(const std::string& spec) {
  const size_t at = spec.find('@');
  if (at == std::string::npos) return hub::is_valid_repo_id(spec);
  if (!hub::is_valid_repo_id(spec.substr(0, at))) return false;
  try {
    hub::check_revision(spec.substr(at + 1));
  } catch (const Error&) {
    return false;
  }
  return true;
}

RepoSpec parse_repo_spec(const std::string& spec) {
  RepoSpec out;
  const size_t at = spec.find('@');
  out.repo = spec.substr(0, at);
  if (at != std::string::npos) out.revision = spec.substr(at + 1);
  hub::check_repo_id(out.repo);
  hub::check_revision(out.revision);
  return out;
}

}  // namespace t5g
