// t5g quantize: writes a copy of a checkpoint whose text matrices are stored in bf16, int8 or q4, so
// that loading it maps them in place (format: model/quantized_checkpoint.h).
#include <memory>

#include "commands.h"
#include "common.h"
#include "model/model.h"
#include "model/quantized_checkpoint.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct QuantizeArgs {
  ModelArgs m;
  std::string out;
  bool force = false;
};

}  // namespace

Action add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* c = app.add_subcommand(
      "quantize", "Write a copy of a checkpoint with its text weights in bf16, int8 or q4 (--weights), which then "
                  "loads pre-quantized by mmap");
  a->m.add_to(c, /*with_threads=*/true, ModelArgs::CrossKvFlag::kAbsent);
  c->add_option("-o,--out", a->out, "Output folder (created; must not be the input)")->required();
  c->add_flag("--force", a->force, "Write into an existing output folder");
  return [a]() {
    const WeightFormat format = parse_weight_format(a->m.weights);
    check(format != WeightFormat::kAsStored, "t5g quantize needs --weights bf16, int8 or q4");
    auto model = a->m.open();
    const LoadedModel& lm = model->internals();
    const QuantizedCheckpointStats st = write_quantized_checkpoint(lm, format, a->out, a->force);
    nlohmann::ordered_json out = {{"output", a->out},
                                  {"weights", weight_format_name(format)},
                                  {"tensors", st.tensors},
                                  {"files_copied", st.files_copied},
                                  {"bytes", st.bytes},
                                  {"input_bytes", lm.checkpoint->total_tensor_bytes()}};
    print_json(out);
    return 0;
  };
}

}  // namespace t5g::cli
