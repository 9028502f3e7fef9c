"""Debug aid: bf16 vision tower states of a two-image batch vs each image alone (eager).
Run: ORACLE_OUT=/host/build/oracle ../shared/oracle/run.sh python3 /host/tools/oracle/dump_bf16_vision.py"""
import os, torch
from safetensors.torch import load_file, save_file
from transformers import T5Gemma2ForConditionalGeneration
out = os.environ.get("ORACLE_OUT", "/host/build/oracle"); os.makedirs(out, exist_ok=True)
m = T5Gemma2ForConditionalGeneration.from_pretrained("/host/tests/data/vectors/tiny/model_bf16", attn_implementation="eager", dtype=torch.bfloat16).eval()
c = load_file("/host/tests/data/vectors/tiny/cases/image_batch_pad_right.safetensors")
px = c["in.pixel_values"].to(torch.bfloat16)
enc = m.get_encoder(); rec = {}
with torch.no_grad():
    vb = enc.vision_tower(pixel_values=px, output_hidden_states=True)
    for i, h in enumerate(vb.hidden_states): rec[f"batch.hs.{i}"] = h.float()
    rec["batch.feat"] = enc.multi_modal_projector(vb.last_hidden_state).float()
    for j in range(2):
        va = enc.vision_tower(pixel_values=px[j:j+1], output_hidden_states=True)
        for i, h in enumerate(va.hidden_states): rec[f"alone{j}.hs.{i}"] = h.float()
        rec[f"alone{j}.feat"] = enc.multi_modal_projector(va.last_hidden_state).float()
for k in sorted(rec):
    if k.startswith("batch"):
        for j in range(2):
            kk = k.replace("batch", f"alone{j}")
            print(k, j, (rec[k][j] - rec[kk][0]).abs().max().item())
save_file({k: v.contiguous() for k, v in rec.items()}, out + "/bf16_vision.safetensors")
