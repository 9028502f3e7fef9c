// Vector conversions of every ISA this CPU runs: bit-exact against util/bf16.h.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/convert.h"
#include "kernels/cpu_features.h"
#include "util/bf16.h"

namespace t5g {
namespace {

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (int i = 0; i <= static_cast<int>(active_isa()); ++i) v.push_back(static_cast<Isa>(i));
  return v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<uint16_t> all_u16() {
  std::vector<uint16_t> v(65536);
  for (uint32_t i = 0; i < 65536; ++i) v[i] = static_cast<uint16_t>(i);
  return v;
}

TEST(Convert, Bf16ToF32Exhaustive) {
  const std::vector<uint16_t> src = all_u16();
  for (Isa isa : isas()) {
    for (int64_t off : {0, 1, 3}) {  // misaligned starts and every tail length through the offsets
      std::vector<float> dst(src.size(), -1.f);
      convert_bf16_to_f32_isa(isa, src.data() + off, dst.data(), static_cast<int64_t>(src.size()) - off);
      for (size_t i = 0; i + off < src.size(); ++i)
        ASSERT_EQ(bits(bf16_to_f32(src[i + off])), bits(dst[i])) << isa_name(isa) << " pattern " << src[i + off];
    }
  }
}

TEST(Convert, F16ToF32Exhaustive) {
  const std::vector<uint16_t> src = all_u16();
  for (Isa isa : isas()) {
    for (int64_t off : {0, 5}) {
      std::vector<float> dst(src.size(), -1.f);
      convert_f16_to_f32_isa(isa, src.data() + off, dst.data(), static_cast<int64_t>(src.size()) - off);
      for (size_t i = 0; i + off < src.size(); ++i)
        ASSERT_EQ(bits(f16_to_f32(src[i + off])), bits(dst[i])) << isa_name(isa) << " pattern " << src[i + off];
    }
  }
}

std::vector<float> tricky_floats() {
  std::vector<float> v;
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> u32;
  for (int i = 0; i < 200000; ++i) v.push_back(from_bits(u32(rng)));  // every class: NaN, inf, denormal, ...
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int i = 0; i < 20000; ++i) v.push_back(nd(rng));
  const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
  const uint32_t highs[] = {0x0000, 0x0001, 0x0080, 0x3f80, 0x3f81, 0x7f7f, 0x7f80, 0x7fbf, 0x7fc0, 0x7fff,
                            0x8000, 0x8001, 0xbf80, 0xff7f, 0xff80, 0xff81, 0xffc0, 0x007f, 0x4049};
  for (uint32_t h : highs)
    for (uint32_t l : lows) v.push_back(from_bits((h << 16) | l));  // ties, carries into exponent, NaN payloads
  for (int i = 0; i < 4096; ++i) v.push_back(from_bits((u32(rng) & 0xffff0000u) | 0x8000u));  // random ties
  return v;
}

TEST(Convert, F32ToBf16) {
  const std::vector<float> src = tricky_floats();
  for (Isa isa : isas()) {
    for (int64_t off : {0, 1, 7, 13}) {
      const int64_t n = static_cast<int64_t>(src.size()) - off;
      std::vector<uint16_t> dst(static_cast<size_t>(n) + 1, 0xabcd);
      convert_f32_to_bf16_isa(isa, src.data() + off, dst.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(f32_to_bf16(src[i + off]), dst[i]) << isa_name(isa) << " input bits 0x" << std::hex << bits(src[i + off]);
      EXPECT_EQ(dst[n], 0xabcd) << "wrote past the end";
    }
  }
}

TEST(Convert, RoundToBf16Inplace) {
  const std::vector<float> src = tricky_floats();
  for (Isa isa : isas()) {
    for (int64_t off : {0, 3, 9}) {
      const int64_t n = static_cast<int64_t>(src.size()) - off;
      std::vector<float> x(src.begin() + off, src.end());
      x.push_back(1.2345f);
      round_to_bf16_inplace_isa(isa, x.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(bits(round_bf16(src[i + off])), bits(x[i])) << isa_name(isa) << " input bits 0x" << std::hex << bits(src[i + off]);
      EXPECT_EQ(x[n], 1.2345f) << "wrote past the end";
    }
  }
}

TEST(Convert, ShortLengthsAndDefaultEntryPoints) {
  const std::vector<float> src = tricky_floats();
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<uint16_t> h(static_cast<size_t>(n) + 1, 0x1111);
    convert_f32_to_bf16(src.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_to_bf16(src[i]), h[i]);
    EXPECT_EQ(h[n], 0x1111);
    std::vector<float> f(static_cast<size_t>(n) + 1, 7.f);
    convert_bf16_to_f32(h.data(), f.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(bf16_to_f32(h[i])), bits(f[i]));
    EXPECT_EQ(f[n], 7.f);
    convert_f16_to_f32(h.data(), f.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(f16_to_f32(h[i])), bits(f[i]));
    EXPECT_EQ(f[n], 7.f);
    std::vector<float> r(src.begin(), src.begin() + n + 1);
    round_to_bf16_inplace(r.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(round_bf16(src[i])), bits(r[i]));
    EXPECT_EQ(bits(r[n]), bits(src[n]));
  }
}

}  // namespace
}  // namespace t5g
