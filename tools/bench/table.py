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
    def peak_fraction(e):  # against the compute peak where the bench reports one (older JSON: the FMA peak)
        return e.get("fraction_of_compute_peak", e["fraction_of_fma_peak"])

    def peak_cell(rec, e):  # int8 / q4 GEMMs on vpdpbusd: also against the bf16 GEMM peak (the targets' measure)
        cell = f"{100 * peak_fraction(e):.0f}% peak"
        if rec.get("compute_peak_kind") == "int8_dot" and e.get("fraction_of_bf16_dot_peak") is not None:
            cell = f"{100 * peak_fraction(e):.0f}% int8 peak, {100 * e['fraction_of_bf16_dot_peak']:.0f}% bf16 peak"
        return cell

    def field(section, key, value, fmt):  # a cell: fmt(the entry of `section` whose `key` is `value`, its record)
        def get(rec):
            e = by(rec.get(section), key, value)
            return e and fmt(e, rec)
        return get

    for L in (128, 512, 2048):
        row(f"encoder, {L} tokens",
            field("encoder", "tokens", L, lambda e, r: f"{e['seconds']:.2f} s · {e['tokens_per_s']:.0f} tok/s · "
                                                       + peak_cell(r, e)),
            field("encoder", "tokens", L, lambda e, r: f"{e['seconds']:.2f} s · {e['tokens_per_s']:.0f} tok/s"))
    for L in (128, 512, 2048):
        first = field("first_token", "tokens", L, lambda e, r: f"{e['seconds']:.2f} s")
        row(f"first token, {L} input tokens", first, first)
    for B in (1, 8):
        row(f"decode, batch {B}",
            field("decode", "batch", B, lambda e, r: f"{e['tokens_per_s']:.1f} tok/s · {100 * e['fraction_of_bound']:.0f}% "
                                                     f"of bound ({e['bandwidth_bound_tokens_per_s']:.0f})"
                                                     + (f" · {100 * e['fraction_of_roofline']:.0f}% of roofline "
                                                        f"({e['roofline_tokens_per_s']:.0f})"
                                                        if "roofline_tokens_per_s" in e
                                                        and e["roofline_tokens_per_s"] < e["bandwidth_bound_tokens_per_s"]
                                                        else "")),
            field("decode", "batch", B, lambda e, r: f"{e['tokens_per_s']:.1f} tok/s"))

    def ratio(rec):
        b1, b8 = by(rec.get("decode"), "batch", 1), by(rec.get("decode"), "batch", 8)
        if b8 and "speedup_over_batch_1" in b8:  # t5g bench: the median of the interleaved rounds' ratios
            return f"{b8['speedup_over_batch_1']:.1f}×"
        return b1 and b8 and f"{b8['tokens_per_s'] / b1['tokens_per_s']:.1f}×"
    row("batch 8 / batch 1", ratio, ratio)
    row("one 896×896 image (s)",
        lambda o: "image" in o and f"{o['image']['seconds_per_image']:.1f} s · {100 * peak_fraction(o['image']):.0f}% peak" or None,
        lambda t: "image" in t and f"{t['image']['seconds_per_image']:.1f} s" or None)
    row("first image, cold (s)",
        lambda o: "image" in o and "first_image_seconds" in o["image"] and f"{o['image']['first_image_seconds']:.1f} s" or None,
        lambda t: None)
    row("decode step weight bytes", lambda o: f"{o['decode_step_weight_bytes'] / 1e6:.0f} MB", lambda t: None)
    row("peak RSS", lambda o: f"{o['peak_rss_mb']:.0f} MB", lambda t: None)
    o = ours[0]
    print()
    dot = o.get("bf16_dot_peak_gflop_per_s")
    int8 = next((r["int8_dot_peak_gop_per_s"] for r in ours if r.get("int8_dot_peak_gop_per_s")), None)
    print(f"Machine (measured by `t5g bench`): fp32 FMA peak {o['fma_peak_gflop_per_s']:.0f} GFLOP/s, "
          + (f"vdpbf16ps peak {dot:.0f} GFLOP/s, " if dot else "")
          + (f"vpdpbusd peak {int8:.0f} GOP/s, " if int8 else "")
          + f"read bandwidth {o['memory_bandwidth_gbs']:.1f} GB/s, {o['threads']} threads, ISA {o['isa']}. "
          "\"peak\": the fraction of the peak the model's GEMMs can reach (compute_peak_kind: "
          + ", ".join(sorted({r.get("compute_peak_kind", "fp32_fma") for r in ours})) + ").")


if __name__ == "__main__":
    main()
