#include "common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  check(!text.empty(), flag, ": empty id list");
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string tok = text.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    check(!tok.empty() && ec == std::errc() && p == tok.data() + tok.size() && v >= 0 && v <= INT32_MAX, flag,
          ": '", tok, "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return ids;
}

std::string read_prompt_file(const std::string& path) { return read_text_file(path); }

void InputArgs::add_to(CLI::App* c, const std::string& what) {
  c->add_option("--input-ids", input_ids,
                "Encoder input ids, comma-separated, used exactly as given (no BOS/EOS added). Repeat the flag to "
                "make a batch; each row's result equals running it alone.")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("-p,--prompt", prompts, "Input text " + what + ", tokenized as the model input is built (BOS per "
                "tokenizer_config). Repeatable (a batch).")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--prompt-file", prompt_files, "Read the input text from a file (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--image", images,
                "Image file (JPEG, PNG, WebP, GIF, BMP), repeatable. With text, each <start_of_image> in the prompt "
                "takes the next image (markers are prepended when the prompt has none); with --input-ids the images "
                "fill the image-token positions in order.")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_flag("--pan-and-scan", pan_and_scan, "Add the reference's pan-and-scan crops of wide/tall images (off by default)");
  c->add_flag("--pil-resize", pil_resize,
              "Resize with PIL's bilinear filter instead of torchvision's (the transformers 5 default; PIL "
              "differs by up to 1/255 per pixel)");
  c->add_flag("--exif-rotate", exif, "Apply the images' EXIF orientation (the reference does not)");
}

std::vector<std::string> InputArgs::texts() const {
  std::vector<std::string> t = prompts;
  for (const auto& f : prompt_files) t.push_back(read_prompt_file(f));
  return t;
}

std::vector<Input> InputArgs::resolve(const Model& model) const {
  const bool ids = !input_ids.empty(), text = !prompts.empty() || !prompt_files.empty();
  check(ids || text || !images.empty(), "give the input with --input-ids, -p/--prompt or --prompt-file");
  check(!(ids && text), "give the input either as --input-ids or as text (-p/--prompt-file), not both");
  std::vector<Input> out;
  for (const auto& s : input_ids) {
    out.emplace_back();
    out.back().input_ids = parse_id_list(s, "--input-ids");
  }
  for (const auto& t : texts()) {
    out.emplace_back();
    out.back().prompt = t;
    check(!t.empty() || !images.empty(), "a prompt is empty");
  }
  if (out.empty()) out.emplace_back();  // images alone
  for (auto& in : out) {
    in.pan_and_scan = pan_and_scan;
    in.pil_resize = pil_resize;
    in.apply_exif_orientation = exif;
  }
  if (out.size() == 1) {
    for (const auto& f : images) out[0].images.push_back(Image{f, {}, f});
    return out;
  }
  const ModelInfo info = model.info();
  size_t next = 0;
  for (auto& in : out) {
    size_t want = 0;
    if (!in.input_ids.empty()) {
      for (int32_t id : in.input_ids) want += id == info.image_token_id;
      want /= static_cast<size_t>(std::max<int64_t>(1, info.mm_tokens_per_image));
    } else {
      for (size_t p = in.prompt.find("<start_of_image>"); p != std::string::npos; p = in.prompt.find("<start_of_image>", p + 1))
        ++want;
    }
    for (size_t k = 0; k < want; ++k, ++next) {
      check(next < images.size(), "the batch has more image markers than --image files (", images.size(), ")");
      out[&in - out.data()].images.push_back(Image{images[next], {}, images[next]});
    }
  }
  check(next == images.size(), images.size(), " --image files but the batch's inputs have ", next,
        " image markers; in a batch each image needs its marker (<start_of_image> or image-token block)");
  return out;
}

DownloadProgress progress_bar() {
  const bool tty = ::isatty(2);
  auto last_file = std::make_shared<std::string>();
  return [tty, last_file](const std::string& file, int64_t done, int64_t total) {
    if (!tty) {
      if (file != *last_file) std::fprintf(stderr, "downloading %s\n", file.c_str());
      *last_file = file;
      return;
    }
    const double mb = done / 1e6;
    if (total > 0) {
      const int width = 30, filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
      std::fprintf(stderr, "\r%-40.40s [%.*s%*s] %7.1f / %.1f MB", file.c_str(), filled,
                   "##############################", width - filled, "", mb, total / 1e6);
    } else {
      std::fprintf(stderr, "\r%-40.40s %7.1f MB", file.c_str(), mb);
    }
    if (total > 0 && done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

void ModelArgs::add_to(CLI::App* c, bool with_threads, CrossKvFlag cross) {
  c->add_option("-m,--model", model, kModelHelp)->required();
  if (with_threads) c->add_option("--threads", threads, "Compute threads (0 = all cores)")->capture_default_str();
  c->add_option("--weights", weights,
                "Text weight format: auto (as stored, mapped in place), bf16, int8 or q4 (grouped 8-/4-bit, "
                "quantized at load; `t5g quantize` saves a checkpoint that loads pre-quantized)")
      ->capture_default_str();
  c->add_option("--weight-memory", weight_memory,
                "Where the decoder's matrices and the LM head are kept: auto (huge pages where the kernel offers "
                "them), mapped (in place in the mmap: fastest load) or huge-pages (copied at load into transparent "
                "huge pages: faster decoding; on CPUs with AVX512_BF16 a bf16 model's decode and encoder matrices "
                "are packed once into the bf16 kernels' panels instead: faster batched decoding and encoding)")
      ->capture_default_str();
  if (cross == CrossKvFlag::kAbsent) return;
  c->add_option("--cross-kv", cross_kv,
                cross == CrossKvFlag::kUsed
                    ? "Cross K/V cache (the largest buffer of a long input): auto (bf16 for a bf16 model, exact; fp32 "
                      "otherwise) or int8 (per-row scales: half of bf16's memory, approximate)"
                    : "auto or int8: checked, no effect here (the encoder alone keeps no cross K/V cache)")
      ->capture_default_str();
}

std::shared_ptr<const Model> ModelArgs::open() const {
  return open_model(model, threads, weights, cross_kv, weight_memory);
}

std::shared_ptr<const Model> open_model(const std::string& path, int threads, const std::string& weights,
                                        const std::string& cross_kv, const std::string& weight_memory) {
  LoadOptions o;
  o.threads = threads;
  o.weights = weights;
  o.cross_kv = cross_kv;
  o.weight_memory = weight_memory;
  o.on_download = progress_bar();
  return Model::load(path, o);
}

void print_json(const nlohmann::ordered_json& j) {
  // Invalid UTF-8 (a text cut inside a character) is replaced, never an exception.
  std::string s = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

}  // namespace t5g::cli
