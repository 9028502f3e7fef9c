// t5g encode: encoder embeddings (per-token final hidden states and a pooled vector).
#include <memory>

#include "commands.h"
#include "common.h"
#include "format/npy.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct EncodeArgs {
  ModelArgs m;
  std::string output;
  InputArgs in;
  bool json = false, normalize = false, no_hidden = false;
};
}  // namespace

Action add_encode(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  CLI::App* c = app.add_subcommand("encode", "Encoder embeddings: final hidden states per token and a pooled vector "
                                             "(mean over the input's tokens)");
  a->m.add_to(c, /*with_threads=*/true, ModelArgs::CrossKvFlag::kNoEffect);
  a->in.add_to(c, "to encode");
  c->add_flag("--normalize", a->normalize, "L2-normalise the pooled vectors");
  c->add_flag("--json", a->json,
              "Print {\"outputs\":[{\"tokens\":N,\"dim\":H,\"pooled\":[...],\"hidden\":[[...],...]}]}");
  c->add_flag("--no-hidden", a->no_hidden, "Leave the per-token states out of the JSON (pooled only)");
  c->add_option("--output", a->output,
                "Write NumPy files: F.npy holds the pooled vectors [batch, H]; F.hidden.<i>.npy the per-token "
                "states [tokens, H] of input i");
  return [a]() {
    auto model = a->m.open();
    auto res = model->encode(a->in.resolve(*model), a->normalize);
    if (!a->output.empty()) {
      std::string stem = a->output;
      if (stem.size() > 4 && stem.substr(stem.size() - 4) == ".npy") stem.resize(stem.size() - 4);
      std::vector<float> pooled;
      for (const auto& r : res) pooled.insert(pooled.end(), r.pooled.begin(), r.pooled.end());
      write_npy_f32(stem + ".npy", pooled.data(), {static_cast<int64_t>(res.size()), res[0].dim});
      for (size_t i = 0; i < res.size(); ++i)
        write_npy_f32(stem + ".hidden." + std::to_string(i) + ".npy", res[i].hidden.data(), {res[i].tokens, res[i].dim});
    }
    if (a->json || a->output.empty()) {
      nlohmann::ordered_json out = {{"outputs", nlohmann::ordered_json::array()}};
      for (const auto& r : res) {
        nlohmann::ordered_json o = {{"tokens", r.tokens}, {"dim", r.dim}, {"pooled", r.pooled}};
        if (!a->no_hidden) {
          nlohmann::ordered_json h = nlohmann::ordered_json::array();
          for (int64_t t = 0; t < r.tokens; ++t)
            h.push_back(std::vector<float>(r.hidden.begin() + t * r.dim, r.hidden.begin() + (t + 1) * r.dim));
          o["hidden"] = std::move(h);
        }
        out["outputs"].push_back(std::move(o));
      }
      print_json(out);
    }
    return 0;
  };
}

}  // namespace t5g::cli
