#!/usr/bin/env python3
"""Reference data for the generation runtime: beam search (num_beams, length_penalty, early_stopping,
num_return_sequences, several EOS ids) and the deterministic logits processors under greedy decoding
(repetition_penalty, no_repeat_ngram_size, min_new_tokens), from transformers' own generate().

Checkpoints: tests/data/vectors/tiny/model and tests/data/shapes/*/model (fp32, eager attention).
Inputs are seeded random ids. Random tiny models give near-ties, so every case is also run under
small random perturbations of the processed log-probs (uniform in +-NOISE, added by a custom logits
processor after all the others); a case is kept only when every perturbed run returns the same
sequences (the outcome does not hinge on a difference below NOISE). Greedy cases also record the
smallest top-1/top-2 margin of the processed scores.

Run from the project root (writes tests/data/generation/cases.json):
  ../shared/oracle/run.sh python3 /host/tools/oracle/make_generation_vectors.py
"""
import json, os
import torch
from transformers import LogitsProcessor, LogitsProcessorList, T5Gemma2ForConditionalGeneration

OUT = os.environ.get("ORACLE_OUT", "/host/tests/data/generation")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(2)
NOISE = 1e-3        # perturbation bound for the stability check
NOISE_RUNS = 4
DEFAULT_EOS = 1

MODELS = {  # name -> (path under tests/data, exclusive upper bound of random input ids)
    "tiny": ("vectors/tiny/model", 500),
    "mqa_oddwin": ("shapes/mqa_oddwin/model", 250),
    "gqa_evenwin_softcap": ("shapes/gqa_evenwin_softcap/model", 250),
}

# (num_beams, length_penalty, early_stopping, num_return_sequences, max_new_tokens, eos kind, processors)
BEAM_CONFIGS = [
    (2, 1.0, False, 1, 16, "tok4", {}),
    (4, 1.0, False, 2, 16, "tok4", {}),
    (4, 0.6, True, 2, 12, "tok4", {}),
    (4, 2.0, False, 1, 20, "tok4", {}),
    (2, 0.6, True, 1, 18, "tok3", {}),
    (4, 2.0, True, 2, 14, "tok3", {}),
    (3, 1.0, "never", 3, 14, "tok4", {}),
    (4, 2.0, "never", 2, 12, "tok3", {}),
    (4, 0.6, False, 2, 15, "two", {}),
    (4, 1.0, False, 2, 12, "default", {}),
    (4, 1.0, False, 2, 16, "tok4", {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "min_new_tokens": 5}),
]

GREEDY_CONFIGS = [
    (20, "default", {"repetition_penalty": 1.3}),
    (20, "default", {"repetition_penalty": 0.7}),
    (20, "default", {"no_repeat_ngram_size": 2}),
    (20, "default", {"no_repeat_ngram_size": 1}),
    (16, "tok2", {"min_new_tokens": 8}),
    (20, "tok4", {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "min_new_tokens": 6}),
]


class Noise(LogitsProcessor):
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, input_ids, scores):
        n = (torch.rand(scores.shape, generator=self.g) * 2 - 1) * NOISE
        return torch.where(torch.isfinite(scores), scores + n, scores)


def eos_for(kind, greedy):
    """EOS ids for a case: a token the model produces greedily (so hypotheses do finish early)."""
    if kind == "default":
        return [DEFAULT_EOS]
    if kind == "tok2":
        return [greedy[2]]
    if kind == "tok3":
        return [greedy[3]]
    if kind == "tok4":
        return [greedy[4]]
    if kind == "two":
        return [greedy[3], greedy[6]] if greedy[3] != greedy[6] else [greedy[3], greedy[7]]
    raise ValueError(kind)


def run_beam(m, ids, nb, lp, es, nrs, mnt, eos, procs, noise_seed=None):
    kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=nb, length_penalty=lp,
              early_stopping=es, num_return_sequences=nrs, max_new_tokens=mnt, do_sample=False,
              eos_token_id=eos, return_dict_in_generate=True, output_scores=True, **procs)
    if noise_seed is not None:
        kw["logits_processor"] = LogitsProcessorList([Noise(noise_seed)])
    g = m.generate(**kw)
    seqs = []
    for r in range(nrs):
        n = int((g.beam_indices[r] >= 0).sum())
        seqs.append(g.sequences[r, 1:1 + n].tolist())
    return seqs, g.sequences_scores.tolist()


def run_greedy(m, ids, mnt, eos, procs, noise_seed=None):
    kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=mnt, do_sample=False,
              eos_token_id=eos, return_dict_in_generate=True, output_scores=True, **procs)
    if noise_seed is not None:
        kw["logits_processor"] = LogitsProcessorList([Noise(noise_seed)])
    g = m.generate(**kw)
    seq = g.sequences[0, 1:].tolist()
    margin = min(float(t.topk(2).values[0, 0] - t.topk(2).values[0, 1]) for t in g.scores)
    return seq, margin


@torch.no_grad()
def main():
    os.makedirs(OUT, exist_ok=True)
    out = {"noise": NOISE, "noise_runs": NOISE_RUNS, "models": {k: v[0] for k, v in MODELS.items()},
           "beam": [], "greedy": [], "rejected": []}
    gen = torch.Generator().manual_seed(20240606)
    for mi, (name, (path, hi)) in enumerate(MODELS.items()):
        m = T5Gemma2ForConditionalGeneration.from_pretrained("/host/tests/data/" + path, attn_implementation="eager",
                                                             dtype=torch.float32).eval()
        for k in range(3):
            L = [7, 12, 19][k]
            ids = torch.cat([torch.tensor([2]), torch.randint(4, hi, (L - 1,), generator=gen)])[None]
            base = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                              do_sample=False, eos_token_id=None)[0, 1:].tolist()
            for ci, (nb, lp, es, nrs, mnt, ek, procs) in enumerate(BEAM_CONFIGS):
                eos = eos_for(ek, base)
                seqs, scores = run_beam(m, ids, nb, lp, es, nrs, mnt, eos, procs)
                stable = all(run_beam(m, ids, nb, lp, es, nrs, mnt, eos, procs, 1000 + s)[0] == seqs
                             for s in range(NOISE_RUNS))
                case = dict(model=name, input_ids=ids[0].tolist(), num_beams=nb, length_penalty=lp,
                            early_stopping=es, num_return_sequences=nrs, max_new_tokens=mnt, eos_token_ids=eos,
                            repetition_penalty=procs.get("repetition_penalty", 1.0),
                            no_repeat_ngram_size=procs.get("no_repeat_ngram_size", 0),
                            min_new_tokens=procs.get("min_new_tokens", 0), sequences=seqs, scores=scores)
                (out["beam"] if stable else out["rejected"]).append(case)
                print(name, k, "beam", ci, "stable" if stable else "UNSTABLE", [len(s) for s in seqs], scores,
                      flush=True)
            for ci, (mnt, ek, procs) in enumerate(GREEDY_CONFIGS):
                eos = eos_for(ek, base)
                seq, margin = run_greedy(m, ids, mnt, eos, procs)
                stable = margin > NOISE and all(run_greedy(m, ids, mnt, eos, procs, 2000 + s)[0] == seq
                                                for s in range(NOISE_RUNS))
                # the same case without the processors, to show they changed the result
                plain, _ = run_greedy(m, ids, mnt, eos, {})
                case = dict(model=name, input_ids=ids[0].tolist(), max_new_tokens=mnt, eos_token_ids=eos,
                            repetition_penalty=procs.get("repetition_penalty", 1.0),
                            no_repeat_ngram_size=procs.get("no_repeat_ngram_size", 0),
                            min_new_tokens=procs.get("min_new_tokens", 0), sequence=seq, min_margin=margin,
                            plain_sequence=plain)
                (out["greedy"] if stable else out["rejected"]).append(case)
                print(name, k, "greedy", ci, "stable" if stable else "UNSTABLE", margin, seq != plain, flush=True)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("beam", len(out["beam"]), "greedy", len(out["greedy"]), "rejected", len(out["rejected"]))


if __name__ == "__main__":
    main()
