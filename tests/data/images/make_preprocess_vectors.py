#!/usr/bin/env python3
"""Reference data for t5g_image beyond tests/data/vectors/processor (run in the shared/oracle chroot):

  resize[]      torchvision.transforms.v2.functional.resize(uint8, BILINEAR, antialias=True) and
                PIL Image.resize(BILINEAR) (the two resizes behind Gemma3ImageProcessor /
                Gemma3ImageProcessorPil) over many input/output sizes: SHA-256 of the uint8 HWC result.
  pan_and_scan[] Gemma3ImageProcessor / Gemma3ImageProcessorPil with do_pan_and_scan=True:
                num_crops and, per output image (original first), the SHA-256 of its fp32 CHW bytes
                plus every 8th row/column of it.
  prompt[]      Gemma3Processor (real Gemma 3 tokenizer, image_seq_length=256): the exact text handed
                to the tokenizer (each run of 256 image tokens written as {IMAGE_TOKENS*256}), its
                SHA-256, input_ids and the ids of the unexpanded prompt (run-length encoded as
                [id, count] pairs); or the error raised.

Input images are a formula the C++ test reproduces (no image files needed):
  v(x, y, c) = ((x * 73 + y * 151 + c * 199) ^ ((x * y * 31) >> 3)) & 255
Run from the project root:
  ORACLE_TOKENIZER_DIR=/tmp/gemma3-tokenizer ../shared/oracle/run.sh \
      python3 /host/tests/data/images/make_preprocess_vectors.py
"""
import hashlib
import json
import os
import random

import numpy as np
import PIL
import torch
import torchvision
import transformers
from PIL import Image
from torchvision.transforms.v2 import functional as tvF
from transformers import AutoTokenizer, Gemma3ImageProcessor, Gemma3ImageProcessorPil, Gemma3Processor

HERE = os.path.dirname(os.path.abspath(__file__))
TOKDIR = os.environ.get("ORACLE_TOKENIZER_DIR", "/tmp/gemma3-tokenizer")


def formula_image(w, h):
    y, x, c = np.meshgrid(np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64), np.arange(3, dtype=np.int64),
                          indexing="ij")
    return (((x * 73 + y * 151 + c * 199) ^ ((x * y * 31) >> 3)) & 255).astype(np.uint8)


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def resize_cases():
    rnd = random.Random(7)
    sizes = [(1, 1, 7, 5), (2, 3, 64, 64), (5, 1, 3, 9), (37, 53, 896, 896), (120, 80, 56, 56), (80, 120, 56, 56),
             (1000, 3, 64, 64), (3, 1000, 64, 64), (4000, 10, 896, 896), (641, 479, 224, 224), (896, 896, 895, 897),
             (1023, 767, 896, 896), (300, 2000, 896, 896), (2000, 300, 896, 896), (100, 100, 33, 77),
             (77, 33, 100, 100), (500, 499, 7, 3), (13, 13, 896, 5)]
    for _ in range(40):
        sizes.append((rnd.randint(1, 700), rnd.randint(1, 700), rnd.choice([16, 56, 64, 224, 300, 896]),
                      rnd.choice([16, 56, 64, 224, 300, 896])))
    out = []
    for iw, ih, ow, oh in sizes:
        a = formula_image(iw, ih)
        t = torch.from_numpy(a).permute(2, 0, 1).contiguous()
        tv = tvF.resize(t, [oh, ow], interpolation=tvF.InterpolationMode.BILINEAR, antialias=True)
        tv = tv.permute(1, 2, 0).contiguous().numpy()
        pil = np.array(Image.fromarray(a).resize((ow, oh), Image.BILINEAR))
        out.append({"in": [iw, ih], "out": [ow, oh], "torchvision_sha256": sha(tv), "pil_sha256": sha(pil)})
    return out


def pan_and_scan_cases():
    common = dict(do_resize=True, resample=2, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True, do_pan_and_scan=True)
    default = dict(pan_and_scan_min_crop_size=256, pan_and_scan_max_num_crops=4, pan_and_scan_min_ratio_to_activate=1.2)
    custom = dict(pan_and_scan_min_crop_size=100, pan_and_scan_max_num_crops=3, pan_and_scan_min_ratio_to_activate=1.5)
    cases = [(s, default) for s in [(1024, 300), (600, 250), (300, 900), (520, 400), (1000, 850), (2000, 300),
                                    (1030, 257), (600, 500), (257, 1030), (512, 512)]]
    cases += [(s, custom) for s in [(700, 200), (200, 700), (450, 300), (449, 300), (1000, 101)]]
    size = 64
    out = []
    for (w, h), opts in cases:
        img = Image.fromarray(formula_image(w, h))
        for backend, cls in (("torchvision", Gemma3ImageProcessor), ("pil", Gemma3ImageProcessorPil)):
            ip = cls(size={"height": size, "width": size}, **common, **opts)
            res = ip(images=[img], return_tensors="pt")
            pv = res["pixel_values"].float().numpy()
            out.append({
                "backend": backend, "image": [w, h], "image_size": size,
                "min_crop_size": opts["pan_and_scan_min_crop_size"], "max_num_crops": opts["pan_and_scan_max_num_crops"],
                "min_ratio": opts["pan_and_scan_min_ratio_to_activate"],
                "num_crops": [int(n) for n in np.asarray(res["num_crops"]).reshape(-1)],
                "outputs": [{"sha256_f32": sha(p.astype(np.float32)), "mean": float(p.mean())} for p in pv],
            })
    return out


def rle(ids):
    out = []
    for i in map(int, ids):
        if out and out[-1][0] == i:
            out[-1][1] += 1
        else:
            out.append([i, 1])
    return out


class Recorder:
    """Stands in for the tokenizer after the processor is built, to see the text it is given."""

    def __init__(self, tok):
        self._tok, self.texts = tok, []

    def __call__(self, *args, **kwargs):
        self.texts.append(kwargs.get("text", args[0] if args else None))
        return self._tok(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tok, name)


def prompt_cases():
    tok = AutoTokenizer.from_pretrained(TOKDIR)
    ip = Gemma3ImageProcessorPil(size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    proc = Gemma3Processor(image_processor=ip, tokenizer=tok, image_seq_length=256)
    rec = Recorder(tok)
    proc.tokenizer = rec
    wide = Image.fromarray(formula_image(1024, 300))
    square = Image.fromarray(formula_image(64, 64))
    pas = dict(do_pan_and_scan=True)
    cases = {
        "pan_and_scan_one": dict(text="<start_of_image> Describe this.", images=[wide], **pas),
        "pan_and_scan_mixed": dict(text="A <start_of_image> B <start_of_image> C", images=[[wide, square]], **pas),
        "no_crops_two": dict(text="x<start_of_image>y <start_of_image>", images=[[square, square]]),
        "newline_before_marker": dict(text="line\n<start_of_image>\nnext", images=[square]),
        "empty_list_text": dict(text=[], images=[[square, square]]),
        "none_text": dict(text=None, images=[[square]]),
        "empty_string_text": dict(text="", images=[square]),
        "marker_without_image": dict(text="hello <start_of_image> world"),
        "two_markers_one_image": dict(text="<start_of_image><start_of_image>", images=[square]),
    }
    out = {}
    for name, kw in cases.items():
        rec.texts.clear()
        try:
            res = proc(**kw)
        except Exception as e:  # record, do not hide
            out[name] = {"input": {k: v for k, v in kw.items() if k == "text"}, "error": f"{type(e).__name__}: {e}"}
            continue
        text_in = kw.get("text")
        expanded = rec.texts[-1]
        expanded = expanded[0] if isinstance(expanded, list) else expanded
        run = tok.image_token * 256
        rec_out = {"text": text_in, "expanded_text": expanded.replace(run, "{IMAGE_TOKENS*256}"),
                   "expanded_sha256": hashlib.sha256(expanded.encode()).hexdigest(),
                   "input_ids_rle": rle(res["input_ids"][0])}
        if isinstance(text_in, str):
            rec_out["unexpanded_ids_rle"] = rle(tok(text_in)["input_ids"])
        out[name] = rec_out
    return out


def main():
    data = {
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "pillow": PIL.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "resize": resize_cases(),
        "pan_and_scan": pan_and_scan_cases(),
        "prompt": prompt_cases(),
    }
    with open(os.path.join(HERE, "oracle_preprocess.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
    print(json.dumps(data["versions"]), len(data["resize"]), "resize cases,", len(data["pan_and_scan"]), "pan-and-scan cases")
    for k, v in data["prompt"].items():
        print(k, v.get("error") or (sum(c for _, c in v["input_ids_rle"]), v["expanded_text"][:70].replace("\n", "\\n")))


if __name__ == "__main__":
    main()
