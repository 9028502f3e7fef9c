#!/usr/bin/env bash
# The text side of the t5g contract on a small random checkpoint with the real Gemma 3 vocabulary
# (made here by `t5g init-random`, with the Gemma 3 tokenizer files): tokenize/detokenize against
# the reference ids, generate -p with streamed text equal to the JSON text, score --target.
set -u
T5G=$1
DATA=$2
TOKDIR=$3
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
expect_eq() { if [ "$1" == "$2" ]; then ok; else bad "$3: got [$1] expected [$2]"; fi; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
M=$TMP/model
$T5G init-random --config $DATA/configs/tiny-gemma3-vocab.json --out $M --dtype bf16 2>/dev/null || bad "init-random"
cp $TOKDIR/tokenizer.json $TOKDIR/tokenizer_config.json $M/

# reference ids (tests/data/tokenizer/gemma3_hf_ids.json): "Hello world" -> [2, 9259, 1902]
expect_eq "$($T5G tokenize -m $M -p 'Hello world' --json)" '{"ids":[2,9259,1902]}' "tokenize"
expect_eq "$($T5G tokenize -m $M -p 'Hello world' --no-special)" '9259,1902' "tokenize --no-special"
printf 'Hello world' > $TMP/p.txt
expect_eq "$($T5G tokenize -m $M --prompt-file $TMP/p.txt --json)" '{"ids":[2,9259,1902]}' "tokenize --prompt-file"
expect_eq "$($T5G detokenize -m $M --ids 2,9259,1902)" 'Hello world' "detokenize"
expect_eq "$($T5G detokenize -m $M --ids 2,9259,1902 --keep-special)" '<bos>Hello world' "detokenize --keep-special"

# generate from text: the streamed text equals the JSON text, which is the decode of the ids
J=$($T5G generate -m $M -p 'The capital of France is' --max-new-tokens 8 --ignore-eos --json)
IDS=$(echo "$J" | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/')
TEXT_JSON=$(echo "$J" | sed 's/.*"text":"\(.*\)"}]}$/\1/')
STREAM=$($T5G generate -m $M -p 'The capital of France is' --max-new-tokens 8 --ignore-eos)
DETOK=$($T5G detokenize -m $M --ids "$IDS")
expect_eq "$STREAM" "$DETOK" "streamed text == detokenize(ids)"
[ -n "$IDS" ] && ok || bad "generate json ids: $J"
case "$J" in '{"outputs":[{"ids":['*'],"text":"'*) ok ;; *) bad "generate json shape: $J" ;; esac
# the same input as ids gives the same ids
J2=$($T5G generate -m $M --input-ids $($T5G tokenize -m $M -p 'The capital of France is') --max-new-tokens 8 --ignore-eos --json)
expect_eq "$(echo "$J2" | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/')" "$IDS" "prompt == its ids"
# score with a text target: one logprob per target token
S=$($T5G score -m $M -p 'Hello' --target ' world' --json)
case "$S" in '{"logprobs":[-'*']}') ok ;; *) bad "score --target: $S" ;; esac
# errors
O=$($T5G generate -m $M -p 'x' --input-ids 2 2>&1); [ $? -ne 0 ] && [[ "$O" == error:*"not both"* ]] && ok || bad "ids and text: $O"
O=$($T5G tokenize -m $DATA/vectors/tiny/model -p 'x' 2>&1); [ $? -ne 0 ] && [[ "$O" == error:*"tokenizer.json"* ]] && ok || bad "no tokenizer: $O"

echo "cli text: $pass passed, $fail failed"
[ $fail -eq 0 ]
