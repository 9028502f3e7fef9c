#!/usr/bin/env python3
"""Reference vectors for shapes the two shared tiny checkpoints do not cover: MQA (1 kv head),
odd and even sliding windows, query_pre_attn_scalar != head_dim, inputs and outputs several times
longer than the window (ring-buffer KV), a final-logit softcap, no vision tower.

Run from the project root (writes tests/data/shapes/<name>/{model,cases.safetensors,manifest.json}):
  ORACLE_OUT=/host/tests/data/shapes ../shared/oracle/run.sh python3 /host/tools/oracle/make_shape_vectors.py
"""
import json, os, sys
import torch
sys.path.insert(0, "/oracle")
from make_vectors import randomize  # noqa: E402  (seeded re-initialisation of every parameter)
from safetensors.torch import save_file
from transformers import (GenerationConfig, SiglipVisionConfig, T5Gemma2Config, T5Gemma2DecoderConfig,
                          T5Gemma2EncoderConfig, T5Gemma2ForConditionalGeneration, T5Gemma2TextConfig)

OUT = os.environ.get("ORACLE_OUT", "/host/tests/data/shapes")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(2)
VOCAB, PAD, EOS, BOS = 256, 0, 1, 2
BOI, EOI, IMG = 253, 254, 255

SHAPES = {
    # MQA, odd window 5, scalar 10 != head_dim 16, linear RoPE x4 on full layers
    "mqa_oddwin": dict(hidden_size=40, intermediate_size=72, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                       query_pre_attn_scalar=10, sliding_window=5,
                       rope={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 5000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}},
                       enc_layers=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention", "full_attention"],
                       dec_layers=["sliding_attention", "sliding_attention", "full_attention"], final_softcap=None,
                       lens=[23], dec_len=40, new_tokens=30),
    # GQA 6/3, even window 6, final softcap, batch of different lengths
    "gqa_evenwin_softcap": dict(hidden_size=24, intermediate_size=40, num_attention_heads=6, num_key_value_heads=3, head_dim=8,
                                query_pre_attn_scalar=8, sliding_window=6,
                                rope={"full_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                      "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
                                enc_layers=["sliding_attention", "sliding_attention", "full_attention"],
                                dec_layers=["full_attention", "sliding_attention"], final_softcap=3.0,
                                lens=[30, 17, 9], dec_len=20, new_tokens=25),
}


def make_model(s, seed):
    common = dict(vocab_size=VOCAB, hidden_size=s["hidden_size"], intermediate_size=s["intermediate_size"],
                  num_attention_heads=s["num_attention_heads"], num_key_value_heads=s["num_key_value_heads"],
                  head_dim=s["head_dim"], query_pre_attn_scalar=s["query_pre_attn_scalar"],
                  hidden_activation="gelu_pytorch_tanh", max_position_embeddings=512, rms_norm_eps=1e-6,
                  sliding_window=s["sliding_window"], rope_parameters=s["rope"], attention_bias=False,
                  pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS, tie_word_embeddings=True,
                  final_logit_softcapping=s["final_softcap"], attn_logit_softcapping=None)
    enc = T5Gemma2TextConfig(num_hidden_layers=len(s["enc_layers"]), layer_types=s["enc_layers"], **common)
    dec = T5Gemma2DecoderConfig(num_hidden_layers=len(s["dec_layers"]), layer_types=s["dec_layers"], **common)
    vis = SiglipVisionConfig(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2,
                             image_size=28, patch_size=14, vision_use_head=False)
    cfg = T5Gemma2Config(encoder=T5Gemma2EncoderConfig(text_config=enc, vision_config=vis, mm_tokens_per_image=1,
                                                       boi_token_index=BOI, eoi_token_index=EOI, image_token_index=IMG),
                         decoder=dec, image_token_index=IMG, tie_word_embeddings=True)
    torch.manual_seed(seed)
    m = T5Gemma2ForConditionalGeneration(cfg).eval()
    m.set_attn_implementation("eager")
    randomize(m, seed)
    m.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
                                           decoder_start_token_id=BOS, do_sample=False)
    return m


@torch.no_grad()
def main():
    for i, (name, s) in enumerate(SHAPES.items()):
        m = make_model(s, 777 + i)
        d = os.path.join(OUT, name)
        m.save_pretrained(os.path.join(d, "model"))
        # drop the vision tower from the saved file: these fixtures are text-only checkpoints
        from safetensors.torch import load_file
        p = os.path.join(d, "model", "model.safetensors")
        sd = {k: v for k, v in load_file(p).items() if "vision_tower" not in k and "multi_modal_projector" not in k}
        save_file(dict(sorted(sd.items())), p, metadata={"format": "pt"})
        g = torch.Generator().manual_seed(4242 + i)
        rec, meta = {}, {"rows": []}
        for b, L in enumerate(s["lens"]):
            ids = torch.cat([torch.tensor([BOS]), torch.randint(4, BOI, (L - 1,), generator=g)])[None]
            dec = torch.cat([torch.tensor([BOS]), torch.randint(4, BOI, (s["dec_len"] - 1,), generator=g)])[None]
            am = torch.ones_like(ids)
            out = m(input_ids=ids, attention_mask=am, decoder_input_ids=dec, use_cache=False)
            # greedy without EOS stopping: exactly new_tokens tokens, through generate()'s KV cache
            gen = m.generate(input_ids=ids, attention_mask=am, max_new_tokens=s["new_tokens"], do_sample=False,
                             eos_token_id=None, output_logits=True, return_dict_in_generate=True)
            rec[f"{b}.input_ids"] = ids[0]
            rec[f"{b}.decoder_input_ids"] = dec[0]
            rec[f"{b}.encoder_last_hidden_state"] = out.encoder_last_hidden_state[0].float()
            rec[f"{b}.logits"] = out.logits[0].float()
            rec[f"{b}.generate_sequence"] = gen.sequences[0]
            rec[f"{b}.generate_step_logits"] = torch.stack(gen.logits, 1)[0].float()
            top = torch.topk(torch.stack(gen.logits, 1)[0].float(), 2, dim=-1).values
            meta["rows"].append({"input_len": L, "min_greedy_margin": (top[:, 0] - top[:, 1]).min().item(),
                                 "sequence": gen.sequences[0].tolist()})
        save_file({k: v.contiguous() for k, v in rec.items()}, os.path.join(d, "cases.safetensors"))
        meta["shape"] = {k: v for k, v in s.items()}
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(name, meta["rows"])


if __name__ == "__main__":
    main()
