// safetensors parsing: valid files round-trip; every kind of malformed header is a clear
// t5g::Error (never a crash); a randomized fuzz test drives the parser with mutated headers.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "t5g/error.h"

namespace t5g {
namespace {

std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> f(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(f.data() + 8, header.data(), header.size());
  return f;
}

std::string parse_error(const std::vector<uint8_t>& f) {
  try {
    parse_safetensors_header(f.data(), f.size(), "test.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ParsesValidHeader) {
  auto f = make_file(R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[8,20]},)"
                     R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                     20);
  SafetensorsHeader h = parse_safetensors_header(f.data(), f.size(), "x");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");  // sorted by offset
  EXPECT_EQ(h.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.metadata.at("format"), "pt");
}

TEST(Safetensors, ScalarAndEmptyTensors) {
  auto f = make_file(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]}})", 4);
  SafetensorsHeader h = parse_safetensors_header(f.data(), f.size(), "x");
  EXPECT_EQ(h.tensors.size(), 2u);
}

struct Bad {
  const char* what;
  std::string header;
  size_t data;
  const char* expect;  // substring of the error
};

TEST(Safetensors, RejectsMalformedHeaders) {
  const std::vector<Bad> cases = {
      {"not json", "{nope", 0, "not valid JSON"},
      {"json array", "[1,2]", 0, "not a JSON object"},
      {"unknown dtype", R"({"a":{"dtype":"Q3","shape":[1],"data_offsets":[0,1]}})", 1, "unknown dtype 'Q3'"},
      {"missing dtype", R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "no dtype"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "invalid dimension"},
      {"float dim", R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "invalid dimension"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "needs 12"},
      {"out of range", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "outside the file"},
      {"reversed", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8, "reversed"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlap"},
      {"offsets not ints", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}})", 4, "data_offsets"},
      {"shape overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4,
       "overflows"},
      {"metadata not strings", R"({"__metadata__":{"x":1}})", 0, "not a string"},
      {"entry not object", R"({"a":5})", 0, "not an object"},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    const std::string err = parse_error(make_file(b.header, b.data));
    EXPECT_NE(err.find(b.expect), std::string::npos) << "got: " << err;
    EXPECT_NE(err.find("test.safetensors"), std::string::npos) << "error must name the file: " << err;
  }
}

TEST(Safetensors, RejectsTruncatedFiles) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  for (size_t len : {size_t{0}, size_t{5}, size_t{8}, size_t{20}, f.size() - 1}) {
    std::vector<uint8_t> t(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_FALSE(parse_error(t).empty()) << "length " << len;
  }
  // A header length that lies (larger than the file).
  auto g = f;
  g[0] = 0xff;
  g[1] = 0xff;
  EXPECT_NE(parse_error(g).find("truncated"), std::string::npos);
  g[7] = 0x7f;
  EXPECT_NE(parse_error(g).find("implausible"), std::string::npos);
}

// Randomized fuzzing: mutate valid files (bytes, lengths, JSON tokens) and require that the parser
// either accepts (and every tensor range then lies inside the buffer) or throws t5g::Error.
TEST(Safetensors, FuzzHeaderParser) {
  const std::string base =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[4,2],"data_offsets":[0,16]},)"
      R"("v":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}})";
  const auto valid = make_file(base, 28);
  std::mt19937_64 rng(12345);
  const char* tokens[] = {"\"", "{", "}", "[", "]", ",", ":", "-1", "1e30", "18446744073709551615", "null", "\"F16\"",
                          "\"I8\"", "\"shape\"", "\"data_offsets\"", "0", "99999999"};
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> f = valid;
    const int muts = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < muts; ++k) {
      switch (rng() % 5) {
        case 0: f[rng() % f.size()] = static_cast<uint8_t>(rng()); break;  // flip a byte
        case 1: f.resize(rng() % (f.size() + 1)); break;                   // truncate
        case 2: if (f.size() > 8) f[rng() % 8] = static_cast<uint8_t>(rng()); break;  // header length
        case 3: {  // splice a JSON token into the header
          if (f.size() <= 9) break;
          const std::string t = tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))];
          const size_t at = 8 + rng() % (f.size() - 8);
          f.insert(f.begin() + static_cast<std::ptrdiff_t>(at), t.begin(), t.end());
          break;
        }
        default: f.push_back(static_cast<uint8_t>(rng())); break;
      }
      if (f.empty()) break;
    }
    try {
      SafetensorsHeader h = parse_safetensors_header(f.data(), f.size(), "fuzz");
      for (const TensorInfo& t : h.tensors) ASSERT_LE(h.data_offset() + t.end, f.size());
      ++accepted;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(accepted, 0);
}

TEST(Safetensors, WriteThenReadRoundTrip) {
  const std::string path = std::string(T5G_TEST_TMP) + "/roundtrip.safetensors";
  std::vector<float> a{1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b{7, 8, 9};
  write_safetensors(path, {{"b", DType::kBF16, {3}, b.data(), 6}, {"a", DType::kF32, {2, 3}, a.data(), 24}},
                    {{"format", "pt"}});
  SafetensorsFile f(path);
  const TensorInfo* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.tensor_data(*ta), a.data(), 24), 0);
  EXPECT_EQ(f.header().data_offset() % 8, 0u);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
}

// The writer starts the data section on a 64-byte boundary and puts the tensors whose size is a multiple
// of 64 bytes first, so that each of them starts on a cache line in a mapped file; the rest follow.
TEST(Safetensors, WriterAlignsWholeLineTensors) {
  const std::string path = std::string(T5G_TEST_TMP) + "/aligned.safetensors";
  std::vector<uint16_t> odd1(3, 1), odd2(33, 2), big1(64, 3), big2(96, 4);  // 6, 66, 128, 192 bytes
  write_safetensors(path,
                    {{"a_odd", DType::kBF16, {3}, odd1.data(), 6},
                     {"b_big", DType::kBF16, {64}, big1.data(), 128},
                     {"c_odd", DType::kBF16, {33}, odd2.data(), 66},
                     {"d_big", DType::kBF16, {96}, big2.data(), 192}},
                    {});
  SafetensorsFile f(path);
  EXPECT_EQ(f.header().data_offset() % 64, 0u);
  for (const char* name : {"b_big", "d_big"}) {
    const TensorInfo* t = f.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.tensor_data(*t)) % 64, 0u) << name;
  }
  const TensorInfo* c = f.find("c_odd");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(std::memcmp(f.tensor_data(*c), odd2.data(), 66), 0);
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    SafetensorsFile f("/nonexistent/dir/model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace t5g
