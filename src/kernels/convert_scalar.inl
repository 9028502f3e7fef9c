// Scalar conversions for the tails of the vector loops, included inside an anonymous namespace of a
// per-ISA translation unit (a private copy of util/bf16.h's semantics: that header's inline functions
// must not be instantiated with ISA flags).
inline uint32_t cs_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float cs_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t cs_f32_to_bf16(float f) {
  uint32_t u = cs_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float cs_bf16_to_f32(uint16_t h) { return cs_float(static_cast<uint32_t>(h) << 16); }
inline float cs_f16_to_f32(uint16_t h) {
  if ((h & 0x7fffu) > 0x7c00u)  // NaN: keep the payload as util/bf16.h does (no quieting)
    return cs_float((static_cast<uint32_t>(h & 0x8000u) << 16) | 0x7f800000u | (static_cast<uint32_t>(h & 0x3ffu) << 13));
  return _cvtsh_ss(h);
}
