"""Debug aid: per-layer and per-op encoder intermediates of the tiny bf16 model (eager), for
comparing rounding points. Run: ORACLE_OUT=/host/build/oracle ../shared/oracle/run.sh python3 tools/oracle/dump_bf16_layers.py"""
import os, torch
from safetensors.torch import load_file, save_file
from transformers import T5Gemma2ForConditionalGeneration
out = os.environ.get("ORACLE_OUT", "/host/build/oracle"); os.makedirs(out, exist_ok=True)
m = T5Gemma2ForConditionalGeneration.from_pretrained("/host/tests/data/vectors/tiny/model_bf16", attn_implementation="eager", dtype=torch.bfloat16).eval()
case = load_file("/host/tests/data/vectors/tiny/cases/text_single.safetensors")
rec = {}
enc = m.get_encoder()
layer0 = enc.layers[0] if hasattr(enc, "layers") else enc.text_model.layers[0]
def hook(name):
    def f(mod, inp, outp):
        o = outp[0] if isinstance(outp, tuple) else outp
        rec[name] = o.detach().float().clone()
    return f
for n, sub in layer0.named_modules():
    if n: sub.register_forward_hook(hook("l0." + n))
with torch.no_grad():
    eo = enc(input_ids=case["in.input_ids"], attention_mask=case["in.attention_mask"], output_hidden_states=True)
for i, h in enumerate(eo.hidden_states): rec[f"hs.{i}"] = h.float()
rec["last"] = eo.last_hidden_state.float()
save_file({k: v.contiguous() for k, v in rec.items()}, out + "/bf16_layers.safetensors")
print(sorted(rec))
