// Element-wise and row-wise operations of the text and vision models, on fp32 activations.
// Every op takes the activation Precision: in bf16/f16 mode results are rounded where the
// reference (PyTorch running the model in that dtype) rounds them (spec §9), so our numbers
// follow the reference's, not just its formulas.
#pragma once
#include <cstdint>
#include <vector>

namespace t5g {

enum class Precision { kF32, kBF16, kF16 };
const char* precision_name(Precision p);

// Key or value rows of the decoder's attention, stored one of three ways: fp32 (f); bf16 (b: widened
// exactly); or int8 with one fp32 scale per row (q, s: element e of row c is q[c * ld + e] * s[c * sld]).
// Exactly one of f, b, q is set.
struct KvRows {
  const float* f = nullptr;
  const uint16_t* b = nullptr;
  const int8_t* q = nullptr;
  const float* s = nullptr;
  int64_t sld = 0;
};

// x[i] = x rounded to the precision (no-op for kF32).
void round_act(float* x, int64_t n, Precision p);
float round_one(float x, Precision p);

// Gemma RMSNorm over rows of length n: y = x * rsqrt(mean(x^2) + eps) * gain, in fp32, then rounded.
// `gain` holds 1 + w (the stored weight is an offset), precomputed in fp32 as the reference does.
void rms_norm(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
              int64_t ldy, Precision p);

// A Gemma block's output into the residual stream, in one pass over each group of rows instead of three:
// x = rms_norm(round(x)) (x: rows of n, the block's raw product), then h = round(h + x). Bitwise
// round_act, rms_norm and add in turn.
void post_norm_residual(float* x, int64_t rows, int64_t n, const float* gain, float eps, float* h, Precision p);

// LayerNorm (SigLIP): (x - mean) / sqrt(var + eps) * w + b, statistics in fp32, then rounded.
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y,
                Precision p);

// GeGLU on the two projections' raw outputs: with g = round(gate[i]), u = round(up[i]) (their output
// rounding, fused here to save two passes over the MLP's widest arrays), gate[i] = round(round(gelu(g)) * u)
// over `n` elements (tanh or erf GELU).
void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p);
// In place x = round(gelu(x)).
void gelu(float* x, int64_t n, bool tanh_approx, Precision p);

// y = round(a + b) element-wise (residual adds).
void add(const float* a, const float* b, float* y, int64_t n, Precision p);
// y[r, :] = round(y[r, :] + bias) for rows r < rows of n elements, row stride ldy (a linear layer's bias,
// added to the fp32 product before its one rounding, as PyTorch's addmm).
void add_bias(float* y, int64_t rows, int64_t n, int64_t ldy, const float* bias, Precision p);

// RoPE tables for positions[0..T): cos/sin [T, head_dim/2] as the reference builds them (fp32 angle
// float(pos) * inv_freq, inv_freq = 1 / theta^(2j/hd) / linear_factor), rounded to the precision.
struct RopeTable {
  int64_t half = 0;
  std::vector<float> cos, sin;
};
RopeTable make_rope_table(const int64_t* positions, int64_t T, int64_t head_dim, double theta, double linear_factor,
                          Precision p);
// Rotates every head of rows x[t] (row stride ldx, n_heads heads of head_dim) by the table's row t
// (non-interleaved "rotate_half" form): x' = round(round(x*cos) + round(rotate_half(x)*sin)).
void apply_rope(float* x, int64_t T, int64_t ldx, int64_t n_heads, int64_t head_dim, const RopeTable& table,
                Precision p);

// The same for one row x (n_heads heads of head_dim) by the table's row t, on this thread.
void apply_rope_row(float* x, int64_t n_heads, int64_t head_dim, const RopeTable& table, int64_t t, Precision p);

// Final-logit softcap: x = c * tanh(x / c), rounded per step as the reference does.
void softcap(float* x, int64_t n, float cap, Precision p);

// torch.argmax of x[0..n): the index of the first NaN if there is one (torch orders NaN above every
// number), else of the first maximum (ties go to the lowest index); 0 when n == 0.
int64_t argmax_first(const float* x, int64_t n);

// log_softmax of one row into out (fp32).
void log_softmax(const float* x, int64_t n, float* out);

}  // namespace t5g
