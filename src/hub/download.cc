#include "hub/download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "hub/sha256.h"
#include "util/error.h"

namespace t5g::hub {
namespace {

// Progress is reported at most this often (in bytes) besides the first and last report of a file.
constexpr int64_t kProgressStep = 256 << 10;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

[[noreturn]] void fail_disk(const char* what, const std::string& path, int err) {
  if (err == ENOSPC || err == EDQUOT)
    fail("cannot ", what, " ", path, ": ", std::strerror(err),
         ". Free some space or point HF_HUB_CACHE / HF_HOME at a larger disk; the partial download is kept and "
         "resumes next time");
  fail("cannot ", what, " ", path, ": ", std::strerror(err));
}

void write_all(int fd, const char* data, size_t size, int64_t offset, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_disk("write", path, n < 0 ? errno : EIO);
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
}

// Feeds bytes [0, size) of `fd` to `sha`: the part a previous run already downloaded.
void hash_prefix(int fd, int64_t size, Sha256& sha, const std::string& path) {
  std::vector<char> buf(1 << 20);
  for (int64_t off = 0; off < size;) {
    const ssize_t n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<int64_t>(buf.size(), size - off)), off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot read ", path, ": ", n < 0 ? std::strerror(errno) : "unexpected end of file");
    sha.update(buf.data(), static_cast<size_t>(n));
    off += n;
  }
}

void check_free_space(const std::string& dir, int64_t needed, const std::string& filename) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return;  // cannot tell: let the writes report it
  const auto free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  if (free_bytes < needed)
    fail("not enough disk space for ", filename, ": it needs ", needed / 1000000.0, " MB more but ", dir, " has ",
         free_bytes / 1000000.0, " MB free. Free some space or point HF_HUB_CACHE / HF_HOME at a larger disk");
}

// First byte position of a "Content-Range: bytes a-b/c" header, -1 when unparsable.
int64_t content_range_start(const std::string& value) {
  const size_t sp = value.find(' ');
  if (sp == std::string::npos) return -1;
  int64_t v = 0;
  size_t i = sp + 1;
  if (i >= value.size() || value[i] < '0' || value[i] > '9') return -1;
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) v = v * 10 + (value[i] - '0');
  return v;
}

}  // namespace

void download_blob(HubSession& session, const RepoCache& cache, const std::string& filename,
                   const FileMetadata& meta, const std::string& sha256, const BytesFn& on_bytes) {
  const HubOptions& opts = session.options();
  const std::string blob = cache.blob_path(meta.etag);
  const std::string incomplete = blob + ".incomplete";
  const int64_t size = meta.size;
  make_dirs(cache.repo_dir() + "/blobs");

  FileLock lock(cache.lock_path(meta.etag));
  if (file_size(blob) == size) {  // another process finished it while we waited for the lock
    on_bytes(size, size);
    return;
  }

  Fd fd(::open(incomplete.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (fd.get() < 0) fail_disk("create", incomplete, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_disk("stat", incomplete, errno);
  int64_t have = st.st_size;
  auto restart = [&](Sha256& sha) {
    if (::ftruncate(fd.get(), 0) != 0) fail_disk("truncate", incomplete, errno);
    have = 0;
    sha.reset();
  };

  Sha256 sha;
  const bool verify = !sha256.empty();
  if (have > size) restart(sha);  // not a prefix of this file: start over
  check_free_space(cache.repo_dir() + "/blobs", size - have, filename);
  if (verify && have > 0) hash_prefix(fd.get(), have, sha, incomplete);
  on_bytes(have, size);

  int failures = 0;  // attempts in a row that brought no new byte
  bool range_refused = false;
  std::string last_error;
  while (have < size) {
    const int64_t offset = have;
    int64_t last_report = have;
    bool first_chunk = true;
    auto sink = [&](const HttpResponse& head, const char* data, size_t n) {
      if (first_chunk) {
        first_chunk = false;
        if (head.status == 206) {
          check(content_range_start(head.header("content-range")) == offset, "the server resumed ", filename,
                " at the wrong offset (asked for byte ", offset, ", got '", head.header("content-range"), "')");
        } else if (offset > 0) {
          restart(sha);  // the server ignored Range and sends the whole file
        }
      }
      check(have + static_cast<int64_t>(n) <= size, "the server sent more than the ", size, " bytes announced for ",
            filename);
      write_all(fd.get(), data, n, have, incomplete);
      if (verify) sha.update(data, n);
      have += static_cast<int64_t>(n);
      if (have - last_report >= kProgressStep || have == size) {
        last_report = have;
        on_bytes(have, size);
      }
    };

    bool retry = false;
    try {
      const HttpResponse r = session.get(meta.location, offset, sink);
      if (r.status == 416 && offset > 0 && !range_refused) {
        range_refused = true;  // our partial file does not fit the server's: download it whole once
        restart(sha);
        continue;
      }
      if (r.status == 429 || r.status >= 500) {
        last_error = "HTTP " + std::to_string(r.status);
        retry = true;
      } else if (r.status < 200 || r.status >= 300) {
        session.fail_http(r, meta.commit, filename);
      } else if (have < size) {
        last_error = "the connection closed after " + std::to_string(have) + " of " + std::to_string(size) + " bytes";
        retry = true;
      }
    } catch (const HttpTransportError& e) {
      if (!e.retryable) session.fail_transport(e, meta.location);
      last_error = e.what();
      retry = true;
    }
    if (!retry) continue;
    failures = have > offset ? 1 : failures + 1;
    if (failures > opts.max_retries)
      fail("downloading ", session.repo(), "/", filename, " failed: ", last_error, " (", have, " of ", size,
           " bytes are kept in ", incomplete, "; run the command again to resume)");
    std::this_thread::sleep_for(std::chrono::milliseconds(opts.retry_delay_ms));
  }

  // The content must be durable before its name says it is complete.
  if (::fsync(fd.get()) != 0) fail_disk("write", incomplete, errno);
  if (::close(fd.release()) != 0) fail_disk("write", incomplete, errno);
  const int64_t got = file_size(incomplete);
  if (got != size) {
    std::remove(incomplete.c_str());
    fail("size mismatch for ", session.repo(), "/", filename, ": expected ", size, " bytes, got ", got,
         "; the download was deleted, run the command again");
  }
  if (verify) {
    const std::string actual = sha.hex_digest();
    if (actual != sha256) {
      std::remove(incomplete.c_str());
      fail("checksum mismatch for ", session.repo(), "/", filename, ": the hub says sha256 ", sha256,
           " but the downloaded file has ", actual,
           ". The corrupt download was deleted; run the command again. If it keeps happening, a proxy or the "
           "mirror at HF_ENDPOINT is altering files");
    }
  }
  if (std::rename(incomplete.c_str(), blob.c_str()) != 0) fail_disk("rename", incomplete + " to " + blob, errno);
}

}  // namespace t5g::hub
