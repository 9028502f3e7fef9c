#include "hub/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "util/error.h"

namespace t5g {
namespace {

std::string sha(const std::string& s) {
  Sha256 h;
  h.update(s.data(), s.size());
  return h.hex_digest();
}

TEST(HubSha256, KnownVectors) {  // FIPS 180-4 examples
  EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HubSha256, IncrementalUpdatesMatchOneShot) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::string expected = sha(data);
  for (size_t step : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u, 1000u}) {
    Sha256 h;
    for (size_t off = 0; off < data.size(); off += step) h.update(data.data() + off, std::min(step, data.size() - off));
    EXPECT_EQ(h.hex_digest(), expected) << "step " << step;
  }
}

TEST(HubSha256, FileMatchesSha256sum) {
  // Value from `sha256sum tests/data/vectors/tiny/model/model.safetensors`.
  EXPECT_EQ(sha256_file(std::string(T5G_TEST_DATA) + "/vectors/tiny/model/model.safetensors"),
            "582858c45fa1cb8d26b81e18cb0126cb3929a6b5717f819debe33df82ba3e077");
  EXPECT_THROW(sha256_file(std::string(T5G_TEST_TMP) + "/no/such/file"), Error);
}

}  // namespace
}  // namespace t5g
