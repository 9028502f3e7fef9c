#include "format/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace t5g {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::ostringstream h;
  h << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    h << shape[i] << (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
    n *= shape[i];
  }
  h << "), }";
  std::string header = h.str();
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(static_cast<bool>(out), "cannot create ", path);
  const char magic[] = "\x93NUMPY\x01\x00";
  out.write(magic, 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char lb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(lb, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(float)));
  check(static_cast<bool>(out), "cannot write ", path);
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "cannot open ", path);
  char pre[10];
  in.read(pre, 10);
  check(in.gcount() == 10 && std::memcmp(pre, "\x93NUMPY", 6) == 0 && pre[6] == 1, path, ": not a .npy v1 file");
  const size_t len = static_cast<uint8_t>(pre[8]) | (static_cast<size_t>(static_cast<uint8_t>(pre[9])) << 8);
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  check(header.find("'<f4'") != std::string::npos && header.find("False") != std::string::npos, path,
        ": only little-endian float32 C-order arrays are supported");
  const size_t a = header.find('('), b = header.find(')');
  check(a != std::string::npos && b != std::string::npos, path, ": malformed header");
  std::vector<int64_t> s;
  int64_t n = 1;
  std::istringstream dims(header.substr(a + 1, b - a - 1));
  std::string tok;
  while (std::getline(dims, tok, ','))
    if (tok.find_first_not_of(' ') != std::string::npos) {
      s.push_back(std::stoll(tok));
      n *= s.back();
    }
  std::vector<float> data(static_cast<size_t>(n));
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(n * sizeof(float)));
  check(in.gcount() == static_cast<std::streamsize>(n * sizeof(float)), path, ": truncated data");
  if (shape) *shape = s;
  return data;
}

}  // namespace t5g
