// The huggingface_hub cache layout, read and written compatibly with the Python tools:
//   <cache>/models--org--name/blobs/<etag>                  file contents, named by etag (sha256 for LFS files)
//   <cache>/models--org--name/snapshots/<commit>/<file>     relative symlinks to ../../blobs/<etag>
//   <cache>/models--org--name/refs/<revision>               the commit a branch or tag points at (no newline)
//   <cache>/models--org--name/.no_exist/<commit>/<file>     empty marker: the file does not exist at that commit
//   <cache>/.locks/models--org--name/<etag>.lock            flock()ed while a blob is written (py-filelock uses flock)
#pragma once
#include <optional>
#include <string>

namespace t5g::hub {

class RepoCache {
 public:
  RepoCache(std::string cache_dir, const std::string& repo);

  const std::string& repo_dir() const { return repo_dir_; }
  std::string blob_path(const std::string& etag) const;
  std::string snapshot_dir(const std::string& commit) const;
  std::string snapshot_file(const std::string& commit, const std::string& filename) const;
  std::string lock_path(const std::string& etag) const;

  // The commit `revision` stands for in the cache: itself when it is a commit hash, else refs/<revision>.
  std::optional<std::string> cached_commit(const std::string& revision) const;
  // Records revision -> commit (atomically; left alone when unchanged, so a read-only cache stays usable).
  void write_ref(const std::string& revision, const std::string& commit) const;

  // The snapshot entry exists and leads to a regular file (a dangling symlink does not count).
  bool has_file(const std::string& commit, const std::string& filename) const;
  bool known_missing(const std::string& commit, const std::string& filename) const;
  void mark_missing(const std::string& commit, const std::string& filename) const;
  // snapshots/<commit>/<filename> -> ../../blobs/<etag> (one more ../ per subfolder), replacing any old entry.
  void link_snapshot_file(const std::string& commit, const std::string& filename, const std::string& etag) const;

 private:
  std::string cache_dir_;
  std::string folder_;  // models--org--name
  std::string repo_dir_;
};

// Creates `dir` and its parents; throws t5g::Error naming it on failure.
void make_dirs(const std::string& dir);
// Size of the regular file at `path` (following symlinks), -1 when there is none.
int64_t file_size(const std::string& path);

// Exclusive flock() on a lock file, released on destruction. Interoperates with huggingface_hub, whose
// FileLock also takes flock() on the same <etag>.lock path.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace t5g::hub
