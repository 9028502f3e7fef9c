#!/usr/bin/env python3
"""Markdown table for BENCHMARKS.md from `t5g bench` JSON files and tools/oracle/bench_pytorch.py JSON
files measured in the same session:
  python3 tools/bench/table.py --ours bf16.json int8.json q4.json --torch torch_bf16.json torch_fp32.json
"""
import argparse, json


def load(paths):
    return [json.load(open(p)) for p in paths]


def by(entries, key, value):
    for e in entries or []:
        if e.get(key) == value:
            return e
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", nargs="+", required=True)
    ap.add_argument("--torch", nargs="*", default=[])
    a = ap.parse_args()
    ours, torch = load(a.ours), load(a.torch)
    cols = [f"t5g {o['weights']}" for o in ours] + [f"PyTorch {t['dtype']} {t['attn']}" for t in torch]
    print("| measure | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))

    def row(name, f_ours, f_torch):
        cells = [f_ours(o) for o in ours] + [f_torch(t) for t in torch]
        print(f"| {name} | " + " | ".join(c if c is not None else "–" for c in cells) + " |")

    row("load (s)", lambda o: f"{o['load_s']:.2f}", lambda t: f"{t['load_s']:.2f}")
    for L in (128, 512, 2048):
        def eo(o, L=L):
            e = by(o.get("encoder"), "tokens", L)
            return e and f"{e['seconds']:.2f} s · {e['tokens_per_s']:.0f} tok/s · {100 * e['fraction_of_fma_peak']:.0f}% peak"
        def et(t, L=L):
            e = by(t.get("encoder"), "tokens", L)
            return e and f"{e['seconds']:.2f} s · {e['tokens_per_s']:.0f} tok/s"
        row(f"encoder, {L} tokens", eo, et)
    for L in (128, 512, 2048):
        def fo(o, L=L):
            e = by(o.get("first_token"), "tokens", L)
            return e and f"{e['seconds']:.2f} s"
        def ft(t, L=L):
            e = by(t.get("first_token"), "tokens", L)
            return e and f"{e['seconds']:.2f} s"
        row(f"first token, {L} input tokens", fo, ft)
    for B in (1, 8):
        def do(o, B=B):
            e = by(o.get("decode"), "batch", B)
            return e and f"{e['tokens_per_s']:.1f} tok/s · {100 * e['fraction_of_bound']:.0f}% of bound ({e['bandwidth_bound_tokens_per_s']:.0f})"
        def dt(t, B=B):
            e = by(t.get("decode"), "batch", B)
            return e and f"{e['tokens_per_s']:.1f} tok/s"
        row(f"decode, batch {B}", do, dt)
    def ratio(o):
        b1, b8 = by(o.get("decode"), "batch", 1), by(o.get("decode"), "batch", 8)
        return b1 and b8 and f"{b8['tokens_per_s'] / b1['tokens_per_s']:.1f}×"
    def ratio_t(t):
        b1, b8 = by(t.get("decode"), "batch", 1), by(t.get("decode"), "batch", 8)
        return b1 and b8 and f"{b8['tokens_per_s'] / b1['tokens_per_s']:.1f}×"
    row("batch 8 / batch 1", ratio, ratio_t)
    row("one 896×896 image (s)",
        lambda o: "image" in o and f"{o['image']['seconds_per_image']:.1f} s · {100 * o['image']['fraction_of_fma_peak']:.0f}% peak" or None,
        lambda t: "image" in t and f"{t['image']['seconds_per_image']:.1f} s" or None)
    row("decode step weight bytes", lambda o: f"{o['decode_step_weight_bytes'] / 1e6:.0f} MB", lambda t: None)
    row("peak RSS", lambda o: f"{o['peak_rss_mb']:.0f} MB", lambda t: None)
    o = ours[0]
    print()
    print(f"Machine (measured by `t5g bench`): fp32 FMA peak {o['fma_peak_gflop_per_s']:.0f} GFLOP/s, "
          f"read bandwidth {o['memory_bandwidth_gbs']:.1f} GB/s, {o['threads']} threads, ISA {o['isa']}.")


if __name__ == "__main__":
    main()
