// A minimal program using the t5gemma.cpp library: load a checkpoint (folder or hub repo id),
// generate from text (streamed), score a continuation, and embed a sentence.
//
//   build/examples/simple_generate MODEL "The capital of France is" [image.jpg]
#include <cstdio>
#include <string>

#include "t5g/t5g.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT [IMAGE]\n", argv[0]);
    return 2;
  }
  try {
    auto model = t5g::Model::load(argv[1], t5g::LoadOptions{});

    t5g::GenerateRequest req;
    req.prompt = argv[2];
    if (argc > 3) req.images.push_back(t5g::Image{argv[3], {}, argv[3]});
    req.max_new_tokens = 32;
    t5g::TextStream stream(*model);
    auto results = model->generate({req}, [&](size_t, int32_t id) {
      std::fputs(stream.push(id).c_str(), stdout);
      std::fflush(stdout);
    });
    std::printf("%s\n[finish: %s, %zu tokens]\n", stream.flush().c_str(), results[0].finish_reason.c_str(),
                results[0].ids.size());

    // Beam search, two sequences with their scores.
    req.num_beams = 4;
    req.num_return_sequences = 2;
    auto beams = model->generate({req});
    std::printf("beam best (%.3f): %s\n", beams[0].score, beams[0].text.c_str());
    for (const auto& alt : beams[0].alternatives) std::printf("beam alt  (%.3f): %s\n", alt.score, alt.text.c_str());

    // Log-probabilities of a continuation, and the sentence's embedding.
    t5g::Input in;
    in.prompt = argv[2];
    auto lp = model->score({in}, {model->tokenize(" Paris", false)});
    std::printf("log p(' Paris') = %.4f\n", lp[0].empty() ? 0.0 : static_cast<double>(lp[0][0]));
    auto emb = model->encode({in}, /*l2_normalize=*/true);
    std::printf("embedding: %lld tokens x %lld dims\n", static_cast<long long>(emb[0].tokens),
                static_cast<long long>(emb[0].dim));
  } catch (const t5g::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
