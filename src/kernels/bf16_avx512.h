// Rounding fp32 lanes to bf16 on AVX-512, shared by the element-wise ops (ops_avx512.cc) and the decode
// kernels that round their outputs as they store them (matmul_vnni.cc). Include only in translation units
// compiled with the AVX-512 flags.
#pragma once
#include <immintrin.h>

namespace t5g::kern {

// avx2::round_bf16_v on 16 lanes, bitwise: round to nearest even, NaN kept (made quiet), as round_bf16.
inline __m512 round_bf16_16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __mmask16 isnan =
      _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
  r = _mm512_mask_mov_epi32(r, isnan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

}  // namespace t5g::kern
