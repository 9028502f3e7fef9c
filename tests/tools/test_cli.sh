#!/usr/bin/env bash
# The t5g command-line contract: JSON shapes and keys, greedy ids equal to the reference, batch
# rows equal to single runs, and one-line "error: ..." failures with a non-zero exit.
set -u
T5G=$1
DATA=$2
MODEL=$DATA/vectors/tiny/model
pass=0; fail=0
ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "FAIL: $*"; }
expect_eq() { if [ "$1" == "$2" ]; then ok; else bad "$3: got [$1] expected [$2]"; fi; }
expect_error() {  # expect_error NAME SUBSTRING CMD...
  local name=$1 sub=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then bad "$name: expected one line, got: $out"; return; fi
  case "$out" in "error: "*"$sub"*) ok ;; *) bad "$name: got: $out" ;; esac
}

# text_single of the reference: input ids and HF generate() output (12 new tokens, no EOS)
IN=2,261,266,335,275,123,103,176,292,383,182,67,363
REF='{"outputs":[{"ids":[349,274,261,203,228,511,376,56,280,280,280,280],"finish_reason":"length"}]}'
expect_eq "$($T5G generate -m $MODEL --input-ids $IN --max-new-tokens 12 --json)" "$REF" "generate json"
expect_eq "$($T5G generate -m $MODEL --input-ids $IN --max-new-tokens 12 --json --threads 1)" "$REF" "threads=1"
# a batch of two: each row equals its single run
A=$($T5G generate -m $MODEL --input-ids 2,5,6,7 --max-new-tokens 6 --json)
B=$($T5G generate -m $MODEL --input-ids $IN --input-ids 2,5,6,7 --max-new-tokens 6 --json)
expect_eq "$(echo "$B" | sed 's/.*},{//; s/}]}$//')" "$(echo "$A" | sed 's/.*\[{//; s/}]}$//')" "batch row equals single run"
# --ignore-eos gives exactly N tokens
N=$($T5G generate -m $MODEL --input-ids 2,5 --max-new-tokens 20 --ignore-eos --json | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/' | grep -o ',' | wc -l)
expect_eq "$N" "19" "ignore-eos token count"
# score: JSON key and one value per target token
S=$($T5G score -m $MODEL --input-ids $IN --target-ids 349,274,261 --json)
case "$S" in '{"logprobs":['*','*','*']}') ok ;; *) bad "score json: $S" ;; esac
# encode: pooled = mean of the per-token states; --normalize gives unit length; .npy files
E=$($T5G encode -m $MODEL --input-ids 2,5,6 --json)
case "$E" in '{"outputs":[{"tokens":3,"dim":48,"pooled":['*'"hidden":[['*) ok ;; *) bad "encode json: ${E:0:80}" ;; esac
TMPD=$(mktemp -d)
$T5G encode -m $MODEL --input-ids 2,5,6 --input-ids 2,7 --normalize --output $TMPD/emb.npy && \
  [ -s $TMPD/emb.npy ] && [ -s $TMPD/emb.hidden.0.npy ] && [ -s $TMPD/emb.hidden.1.npy ] && ok || bad "encode --output"
rm -rf "$TMPD"
# inspect: sizes and parameter counts from config.json + headers (tiny: V=512, H=48: embedding 512*48 + 48 for eoi)
I=$($T5G inspect -m $MODEL --json)
case "$I" in *'"vocab_size":512'*'"parameters":{"text":'*'"embedding":24624'*'"memory_bytes":{'*) ok ;; *) bad "inspect: ${I:0:200}" ;; esac
# a hub repo id that is not cached, offline: a clear error, no network
expect_error "offline uncached repo" "HF_HUB_OFFLINE" env HF_HUB_OFFLINE=1 HF_HOME=/nonexistent-hf $T5G generate -m org/model --input-ids 2
# --weights: int8/q4 at load; t5g quantize writes a checkpoint that loads pre-quantized and computes the same
QD=$(mktemp -d)
for W in int8 q4; do
  AT_LOAD=$($T5G generate -m $MODEL --input-ids $IN --max-new-tokens 8 --json --weights $W)
  case "$AT_LOAD" in '{"outputs":[{"ids":['*) ok ;; *) bad "generate --weights $W: $AT_LOAD" ;; esac
  Q=$($T5G quantize -m $MODEL --weights $W -o $QD/$W)
  case "$Q" in '{"output":'*'"weights":"'$W'"'*'"bytes":'*) ok ;; *) bad "quantize json: $Q" ;; esac
  expect_eq "$($T5G generate -m $QD/$W --input-ids $IN --max-new-tokens 8 --json)" "$AT_LOAD" "pre-quantized $W = quantized at load"
done
B=$($T5G bench -m $QD/q4 --encoder-lengths 8 --decode-batches 1 --decode-tokens 3 --repeats 1)
case "$B" in *'"weights":"q4"'*'"decode":[{"batch":1'*'"fraction_of_bound"'*) ok ;; *) bad "bench q4: ${B:0:200}" ;; esac
# Each decode entry's roofline is the lower of its bandwidth bound and its compute bound (the compute peak
# over 2 operations per multiply-add of a token), and its fraction is the rate over it.
# (jnum KEY [JSON]: the first value of KEY in JSON ($B) from its decode entries on, else in the whole of it)
jnum() { printf '%s' "${2:-$B}" | sed 's/.*"decode":\[/&\n/' | tac | grep -o "\"$1\":[-0-9.e+]*" | head -1 | cut -d: -f2; }
awk -v macs="$(jnum decode_step_multiply_adds_per_token)" -v peak="$(jnum compute_peak_gflop_per_s)" \
    -v bw="$(jnum bandwidth_bound_tokens_per_s)" -v cb="$(jnum compute_bound_tokens_per_s)" \
    -v rl="$(jnum roofline_tokens_per_s)" -v fr="$(jnum fraction_of_roofline)" -v rate="$(jnum tokens_per_s)" '
  function near(a, b) { return a > 0 && b > 0 && (a / b - 1) ^ 2 < 1e-12 }
  BEGIN { want = peak * 1e9 / (2 * macs); lo = bw < want ? bw : want
          exit !(macs > 0 && near(cb, want) && near(rl, lo) && near(fr * rl, rate)) }' && ok || bad "bench roofline: ${B:0:400}"
# Without a SIMD ISA there is no compute peak: no compute bound, and the roofline is the bandwidth bound.
BS=$(T5G_ISA=scalar $T5G bench -m $MODEL --encoder-lengths 8 --decode-batches 1 --decode-tokens 3 --repeats 1 --no-image)
case "$BS" in *'"compute_bound_tokens_per_s":null'*) ok ;; *) bad "bench scalar compute bound: ${BS:0:400}" ;; esac
RS=$(jnum roofline_tokens_per_s "$BS")
if [ -n "$RS" ]; then expect_eq "$RS" "$(jnum bandwidth_bound_tokens_per_s "$BS")" "bench scalar roofline = bandwidth bound"
else bad "bench scalar: no roofline: ${BS:0:400}"; fi
# Batch sizes measured in interleaved rounds; with batch 1 among them, each entry has the median per-round
# ratio to it (batch 1's own is exactly 1).
B2=$($T5G bench -m $MODEL --encoder-lengths 8 --decode-batches 2,1 --decode-tokens 3 --repeats 2)
case "$B2" in *'"decode":[{"batch":2,'*'"speedup_over_batch_1":'*'{"batch":1,'*'"speedup_over_batch_1":1.0}]'*) ok ;; *) bad "bench speedup_over_batch_1: ${B2:0:600}" ;; esac
# Images timed one after another: the first (cold) apart, the time per image the others' median.
B3=$($T5G bench -m $MODEL --encoder-lengths 8 --decode-batches 1 --decode-tokens 3 --repeats 1 --image-runs 3)
case "$B3" in *'"image":{"seconds_per_image":'*'"first_image_seconds":'*'"runs":3,'*) ok ;; *) bad "bench image runs: ${B3:0:900}" ;; esac
expect_error "bench --image-runs 0" "image-runs must be > 0" $T5G bench -m $MODEL --image-runs 0
# The roofline: the best of three samples of each, all reported.
case "$B" in *'"fma_peak_samples_gflop_per_s":['*,*,*']'*'"memory_bandwidth_samples_gbs":['*,*,*']'*) ok ;; *) bad "bench roofline samples: ${B:0:300}" ;; esac
# The compute peak the GEMMs are measured against: for q4 weights the vpdpbusd peak where they run on
# AVX512_VNNI, else the FMA peak (dequantized to fp32 panels); the vdpbf16ps and vpdpbusd peaks are reported
# (null on CPUs without them); every encoder entry has the three fractions.
KIND=fp32_fma
case "$B" in *'"isa":"avx512"'*) grep -qw avx512_vnni /proc/cpuinfo && KIND=int8_dot ;; esac
case "$B" in *'"bf16_dot_peak_gflop_per_s":'*'"int8_dot_peak_gop_per_s":'*'"compute_peak_gflop_per_s":'*"\"compute_peak_kind\":\"$KIND\""*'"fraction_of_fma_peak":'*'"fraction_of_compute_peak":'*'"fraction_of_bf16_dot_peak":'*) ok ;; *) bad "bench compute peak ($KIND): ${B:0:600}" ;; esac
expect_error "quantize into an existing folder" "exists" $T5G quantize -m $MODEL --weights q4 -o $QD/q4
expect_error "quantize without a format" "needs --weights" $T5G quantize -m $MODEL -o $QD/none
expect_error "unknown weight format" "unknown weight format 'q5'" $T5G generate -m $MODEL --input-ids 2 --weights q5
expect_error "unknown cross K/V format" 'cross K/V format "fp8"' $T5G generate -m $MODEL --input-ids 2 --cross-kv fp8
# encode keeps no cross K/V: --cross-kv is checked there but changes nothing; quantize does not take it
expect_eq "$($T5G encode -m $MODEL --input-ids $IN --json --cross-kv int8)" "$($T5G encode -m $MODEL --input-ids $IN --json)" "encode --cross-kv int8 = encode"
expect_error "encode, unknown cross K/V format" 'cross K/V format "fp8"' $T5G encode -m $MODEL --input-ids 2 --cross-kv fp8
expect_error "quantize takes no --cross-kv" "--cross-kv" $T5G quantize -m $MODEL --weights q4 -o $QD/ckv --cross-kv int8
I8=$($T5G generate -m $MODEL --input-ids $IN --max-new-tokens 8 --json --cross-kv int8)
case "$I8" in '{"outputs":[{"ids":['*) ok ;; *) bad "generate --cross-kv int8: $I8" ;; esac
B=$($T5G bench -m $MODEL --cross-kv int8 --encoder-lengths 8 --decode-batches 1 --decode-tokens 3 --repeats 1 --long-lengths 40)
case "$B" in *'"cross_kv":"int8"'*'"long":[{"tokens":40'*'"decode_step_s"'*) ok ;; *) bad "bench --cross-kv int8: ${B:0:300}" ;; esac
expect_error "quantized checkpoint in another format" "stored quantized as q4" $T5G generate -m $QD/q4 --input-ids 2 --weights int8
# --weight-memory: the decode weights mapped in place or copied into huge pages compute the same ids
for WM in mapped huge-pages; do
  expect_eq "$($T5G generate -m $QD/q4 --input-ids $IN --max-new-tokens 8 --json --weight-memory $WM)" \
    "$($T5G generate -m $QD/q4 --input-ids $IN --max-new-tokens 8 --json)" "generate --weight-memory $WM"
done
B=$($T5G bench -m $MODEL --weight-memory mapped --encoder-lengths 8 --decode-batches 2 --decode-tokens 3 --repeats 1)
case "$B" in *'"weights":"f32"'*'"weight_memory":"mapped"'*) ok ;; *) bad "bench --weight-memory mapped: ${B:0:200}" ;; esac
# Without batch 1 there is nothing to divide by: no speedup_over_batch_1.
case "$B" in *'"decode":[{"batch":2,'*'"speedup_over_batch_1"'*) bad "bench without batch 1: ${B:0:600}" ;; *'"decode":[{"batch":2,'*) ok ;; *) bad "bench batch 2: ${B:0:600}" ;; esac
B=$($T5G bench -m $MODEL --weight-memory huge-pages --encoder-lengths 8 --decode-batches 1 --decode-tokens 3 --repeats 1)
case "$B" in *'"weight_memory":"huge-pages"'*) ok ;; *) bad "bench --weight-memory huge-pages: ${B:0:200}" ;; esac
expect_error "unknown weight memory" "unknown weight memory 'hugepages'" $T5G generate -m $MODEL --input-ids 2 --weight-memory hugepages
rm -rf "$QD"
# help
$T5G --help | grep -q generate && ok || bad "t5g --help"
$T5G generate --help | grep -q -- --input-ids && ok || bad "t5g generate --help"

expect_error "missing model folder" "/nonexistent" $T5G generate -m /nonexistent --input-ids 2
expect_error "bad id" "--input-ids" $T5G generate -m $MODEL --input-ids 2,abc
expect_error "id out of vocab" "outside the vocabulary" $T5G generate -m $MODEL --input-ids 2,100000
expect_error "score count mismatch" "target" $T5G score -m $MODEL --input-ids 2,3 --input-ids 2,4 --target-ids 5
expect_error "unknown flag" "" $T5G generate -m $MODEL --input-ids 2 --bogus
expect_error "input too long" "accepts at most 256" $T5G generate -m $MODEL --input-ids 2,$(seq -s, 10 310)
expect_error "output too long" "max_position_embeddings" $T5G generate -m $MODEL --input-ids 2 --max-new-tokens 300
expect_error "not a checkpoint" "no model.safetensors" $T5G generate -m $DATA/tokenizer --input-ids 2

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
