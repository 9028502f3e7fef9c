// Validation of every name that comes from the user or the server and ends up in a URL or a cache path
// (repo ids, revisions, commit hashes, file names, etags): nothing may escape the cache folder.
#pragma once
#include <string>

namespace t5g::hub {

bool is_commit_hash(const std::string& s);  // 40 lowercase hex digits, like huggingface_hub's REGEX_COMMIT_HASH
bool is_sha256_hex(const std::string& s);   // 64 lowercase hex digits

bool is_valid_repo_id(const std::string& repo);  // "org/name" with hub naming rules
void check_repo_id(const std::string& repo);
void check_revision(const std::string& revision);       // branch, tag, "refs/pr/1" or commit
void check_repo_filename(const std::string& filename);  // relative path without "." / ".." parts
void check_etag(const std::string& etag, const std::string& filename);

// "org/name" -> "models--org--name", the repo's folder in the cache.
std::string repo_folder_name(const std::string& repo);

// Percent-encodes for a URL path: everything but unreserved characters, and '/' unless keep_slash.
std::string url_encode(const std::string& s, bool keep_slash);

}  // namespace t5g::hub
