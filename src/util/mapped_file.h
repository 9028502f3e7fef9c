// Read-only memory map of a whole file. Weights are used in place from the map (no copy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace t5g {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only; throws t5g::Error naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Drops the whole pages inside [p, p + n) of a read-only file mapping from this process's memory (they
// are read again from the page cache if touched): for weights copied out of the map at load.
void release_mapped_pages(const void* p, size_t n);

// Reads a whole (small) file into a string; throws t5g::Error naming the path on failure.
std::string read_text_file(const std::string& path);

}  // namespace t5g
