#include "runtime/embed.h"

#include <cmath>

namespace t5g {

std::vector<Embedding> embed_inputs(const LoadedModel& m, const std::vector<EncoderInput>& inputs, bool l2_normalize) {
  std::vector<Embedding> out;
  const int64_t H = m.config.encoder.hidden_size;
  for (const EncoderInput& in : inputs) {
    Embedding e;
    e.tokens = in.length;
    e.dim = H;
    e.hidden = run_encoder(m.weights, m.config, in);
    std::vector<double> sum(static_cast<size_t>(H), 0.0);
    for (int64_t t = 0; t < e.tokens; ++t)
      for (int64_t j = 0; j < H; ++j) sum[j] += e.hidden[t * H + j];
    e.pooled.resize(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) e.pooled[j] = static_cast<float>(sum[j] / static_cast<double>(e.tokens));
    if (l2_normalize) {
      double n2 = 0;
      for (float x : e.pooled) n2 += static_cast<double>(x) * x;
      const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
      for (float& x : e.pooled) x = static_cast<float>(x * inv);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace t5g
