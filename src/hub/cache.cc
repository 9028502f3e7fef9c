#include "hub/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "hub/names.h"
#include "util/error.h"

namespace t5g::hub {
namespace {

std::string parent_of(const std::string& path) { return std::filesystem::path(path).parent_path().string(); }

// A name for a temporary sibling of `path`, unique enough that concurrent writers do not collide.
std::string temp_sibling(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream os;
  os << path << ".tmp." << ::getpid() << "." << std::hex << rng();
  return os.str();
}

}  // namespace

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create directory ", dir, ": ", ec.message());
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<int64_t>(st.st_size);
}

RepoCache::RepoCache(std::string cache_dir, const std::string& repo)
    : cache_dir_(std::move(cache_dir)), folder_(repo_folder_name(repo)) {
  check(!cache_dir_.empty(), "no hub cache directory: set HF_HUB_CACHE or HF_HOME (or HOME)");
  repo_dir_ = cache_dir_ + "/" + folder_;
}

std::string RepoCache::blob_path(const std::string& etag) const { return repo_dir_ + "/blobs/" + etag; }

std::string RepoCache::snapshot_dir(const std::string& commit) const { return repo_dir_ + "/snapshots/" + commit; }

std::string RepoCache::snapshot_file(const std::string& commit, const std::string& filename) const {
  return snapshot_dir(commit) + "/" + filename;
}

std::string RepoCache::lock_path(const std::string& etag) const {
  return cache_dir_ + "/.locks/" + folder_ + "/" + etag + ".lock";
}

std::optional<std::string> RepoCache::cached_commit(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(repo_dir_ + "/refs/" + revision);
  if (!in) return std::nullopt;
  std::string commit;
  std::getline(in, commit);
  // The Python tools write the bare hash; tolerate a trailing newline or spaces from hand-made caches.
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  if (cached_commit(revision) == commit) return;
  const std::string path = repo_dir_ + "/refs/" + revision;
  make_dirs(parent_of(path));
  const std::string tmp = temp_sibling(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      fail("cannot write ", tmp, ": ", std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(err));
  }
}

bool RepoCache::has_file(const std::string& commit, const std::string& filename) const {
  return file_size(snapshot_file(commit, filename)) >= 0;
}

bool RepoCache::known_missing(const std::string& commit, const std::string& filename) const {
  struct stat st {};
  return ::stat((repo_dir_ + "/.no_exist/" + commit + "/" + filename).c_str(), &st) == 0;
}

void RepoCache::mark_missing(const std::string& commit, const std::string& filename) const {
  const std::string path = repo_dir_ + "/.no_exist/" + commit + "/" + filename;
  make_dirs(parent_of(path));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) fail("cannot write ", path, ": ", std::strerror(errno));
  ::close(fd);
}

void RepoCache::link_snapshot_file(const std::string& commit, const std::string& filename,
                                   const std::string& etag) const {
  const std::string link = snapshot_file(commit, filename);
  make_dirs(parent_of(link));
  std::string target = "../../";
  for (char c : filename)
    if (c == '/') target += "../";
  target += "blobs/" + etag;
  // Build the link under a temporary name and rename it into place: readers never see a missing entry.
  const std::string tmp = temp_sibling(link);
  if (::symlink(target.c_str(), tmp.c_str()) != 0) fail("cannot create symlink ", tmp, ": ", std::strerror(errno));
  if (std::rename(tmp.c_str(), link.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot create ", link, ": ", std::strerror(err));
  }
}

FileLock::FileLock(const std::string& path) {
  make_dirs(parent_of(path));
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot open lock file ", path, ": ", std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    fail("cannot lock ", path, ": ", std::strerror(err));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace t5g::hub
