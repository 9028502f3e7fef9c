#!/usr/bin/env python3
"""PyTorch (transformers) baseline for `t5g bench`: the same measurements on the same checkpoint,
printed as one JSON line. Run it in the reference chroot from a folder that contains both this
project and the checkpoint, e.g. from /work:
  ORACLE_MODEL=/host/models/rand-270m ORACLE_DTYPE=bf16 ORACLE_ATTN=sdpa OMP_NUM_THREADS=2 \
    main/../shared/oracle/run.sh python3 /host/main/tools/oracle/bench_pytorch.py
ORACLE_DTYPE: bf16 | fp32 (the dtype the model runs in); ORACLE_ATTN: sdpa | eager;
ORACLE_LENGTHS (128,512,2048), ORACLE_BATCHES (1,8), ORACLE_TOKENS (32), ORACLE_REPEATS (3),
ORACLE_IMAGE (1: time one image through the vision tower + projector).

Debian's torch does its fp32 matrix products through whatever libblas.so.3 the alternatives system
points to. The oracle chroot from setup.sh has only the reference (netlib) BLAS, which makes PyTorch
10-50x slower than it is with an optimized one; install OpenBLAS in the chroot first:
  chroot ~/.cache/t5g-oracle/sid sh -c 'apt-get -o Acquire::Check-Valid-Until=false update &&
    apt-get -o Acquire::Check-Valid-Until=false install -y libopenblas0-pthread'
The JSON records the BLAS library the process loaded ("blas").
"""
import json, os, statistics, time
import torch
from transformers import T5Gemma2ForConditionalGeneration

env = os.environ.get
path = env("ORACLE_MODEL")
dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[env("ORACLE_DTYPE", "bf16")]
attn = env("ORACLE_ATTN", "sdpa")
lengths = [int(x) for x in env("ORACLE_LENGTHS", "128,512,2048").split(",") if x]
batches = [int(x) for x in env("ORACLE_BATCHES", "1,8").split(",") if x]
tokens = int(env("ORACLE_TOKENS", "32"))
repeats = int(env("ORACLE_REPEATS", "3"))
threads = int(env("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)

t0 = time.perf_counter()
model = T5Gemma2ForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=attn).eval()
load_s = time.perf_counter() - t0
cfg = model.config
vocab = cfg.decoder.vocab_size
gen = torch.Generator().manual_seed(0)


def ids(n, b=1):
    x = torch.randint(10, min(vocab - 1, 250000), (b, n), generator=gen)
    x[:, 0] = 2
    return x


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def generate(x, n):
    return model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                          do_sample=False, num_beams=1)


def loaded_blas():
    torch.randn(64, 64) @ torch.randn(64, 64)  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line}
    return sorted(os.path.basename(x) for x in libs)


out = {"engine": "pytorch", "torch": torch.__version__, "blas": loaded_blas(), "dtype": env("ORACLE_DTYPE", "bf16"), "attn": attn,
       "threads": threads, "model": path, "load_s": load_s}
with torch.inference_mode():
    enc, ftl = [], []
    for L in lengths:
        x = ids(L)
        te = [timed(lambda: model.get_encoder()(input_ids=x, attention_mask=torch.ones_like(x))) for _ in range(repeats)]
        tf = [timed(lambda: generate(x, 1)) for _ in range(repeats)]
        enc.append({"tokens": L, "seconds": statistics.median(te), "tokens_per_s": L / statistics.median(te)})
        ftl.append({"tokens": L, "seconds": statistics.median(tf)})
    out["encoder"], out["first_token"] = enc, ftl
    dec = []
    for B in batches:
        x = ids(128, B)
        rates = []
        for _ in range(repeats):
            t1 = timed(lambda: generate(x, 1))
            tn = timed(lambda: generate(x, tokens))
            rates.append(B * (tokens - 1) / (tn - t1))
        dec.append({"batch": B, "new_tokens": tokens, "tokens_per_s": statistics.median(rates)})
    out["decode"] = dec
    if env("ORACLE_IMAGE", "1") == "1" and getattr(cfg.encoder, "vision_config", None) is not None:
        vc = cfg.encoder.vision_config
        px = torch.rand(1, 3, vc.image_size, vc.image_size, generator=gen).to(dtype) * 2 - 1
        out["image"] = {"seconds_per_image": timed(lambda: model.model.encoder.get_image_features(px))}
print(json.dumps(out))
