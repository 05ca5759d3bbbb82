#!/usr/bin/env bash
# Builds the parser fuzz target with clang + libFuzzer + ASan/UBSan and runs it for N seconds.
# Usage: run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS
set -euo pipefail
src=$1 out=$2 seconds=$3
mkdir -p "$out/corpus"
cxx=$(command -v clang++ || true)
if [[ -z $cxx ]]; then echo "run_fuzz: clang++ not found (make deps installs it)" >&2; exit 1; fi
sources=(
  "$src/tests/fuzz/parsers_fuzz.cpp"
  "$src/src/iol/core/dtype.cpp"
  "$src/src/iol/core/json_file.cpp"
  "$src/src/iol/core/mapped_file.cpp"
  "$src/src/iol/model/model_config.cpp"
  "$src/src/iol/model/safetensors.cpp"
  "$src/src/iol/tokenizer/bpe_model.cpp"
  "$src/src/iol/tokenizer/chat_template.cpp"
  "$src/src/iol/tokenizer/jinja/builtins.cpp"
  "$src/src/iol/tokenizer/jinja/lexer.cpp"
  "$src/src/iol/tokenizer/jinja/parser.cpp"
  "$src/src/iol/tokenizer/jinja/py_string.cpp"
  "$src/src/iol/tokenizer/jinja/renderer.cpp"
  "$src/src/iol/tokenizer/jinja/template.cpp"
  "$src/src/iol/tokenizer/jinja/value.cpp"
  "$src/src/iol/tokenizer/byte_level.cpp"
  "$src/src/iol/tokenizer/incremental_detokenizer.cpp"
  "$src/src/iol/tokenizer/text_pipeline.cpp"
  "$src/src/iol/tokenizer/tokenizer.cpp"
  "$src/src/iol/tokenizer/vocabulary.cpp"
  "$src/src/iol/server/openai_request.cpp"
)
binary="$out/parsers_fuzz"
# One object per source, compiled in parallel and only when its source (or a header it may use,
# or this script) is newer; fmt from its shared library rather than header-only, which halves each
# compile (the fuzz binary runs only here, so the soname does not matter).
flags=(-std=c++20 -O1 -gline-tables-only -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -DPCRE2_CODE_UNIT_WIDTH=8 -I"$src/src")
mkdir -p "$out/obj"
newest_header=$(find "$src/src" "$src/tests/fuzz" -name '*.hpp' -newer "$binary" -print -quit 2>/dev/null || true)
objects=() stale=()
for source in "${sources[@]}"; do
  object="$out/obj/$(echo "${source#$src/}" | tr '/' '_').o"
  objects+=("$object")
  if [[ ! -f $object || $source -nt $object || $0 -nt $object || -n $newest_header ]]; then stale+=("$source:$object"); fi
done
if ((${#stale[@]})); then
  printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c 'src_obj="{}"; "$0" "$@" -c "${src_obj%%:*}" -o "${src_obj#*:}"' \
    "$cxx" "${flags[@]}"
fi
if [[ ! -x $binary || ${#stale[@]} -gt 0 ]]; then
  "$cxx" -fsanitize=fuzzer,address,undefined "${objects[@]}" -lfmt -lpcre2-8 -lutf8proc -o "$binary"
fi
# Seeds: one valid input per parser, so mutations start from real structure.
printf '\x00\x36\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\x00\x00\x80\x3f' > "$out/corpus/seed_safetensors"
printf '\x01{"architectures":["LlamaForCausalLM"],"vocab_size":32,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":64}}' > "$out/corpus/seed_config"
printf '\x02{"model":{"type":"BPE","vocab":{"a":0,"\\u0120b":1}},"decoder":{"type":"ByteLevel"},"added_tokens":[{"id":2,"content":"<s>","special":true}]}' > "$out/corpus/seed_tokenizer"
printf '\x03Hello world! caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 <|begin_of_text|> abab\xff\xfe 123456\n\t' > "$out/corpus/seed_encode"
printf '\x0f a <s> aa\xcc\x81 \xf0\x9f\x98\x80' > "$out/corpus/seed_encode_sp"
printf '\x05{"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 4, "temperature": 0.5, "stop": ["a", "b"], "logprobs": 2, "n": 2, "stream": true, "stream_options": {"include_usage": true}}' > "$out/corpus/seed_completion"
printf '\x0b{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "tools": [{"type": "function", "function": {"name": "f"}}], "top_logprobs": 1, "logprobs": true, "max_completion_tokens": 3, "chat_template_kwargs": {"x": 1}}' > "$out/corpus/seed_chat"
# Chat templates: our Llama 2 one, and one using most constructs of the subset.
{ printf '\x04'; cat "$src/chat_templates/llama-2-chat.jinja"; } > "$out/corpus/seed_template_llama2"
printf '%s' $'\x04{%- set ns = namespace(n=0) -%}{% macro m(x, y=2) %}{{ x ~ y }}{% endmacro %}{% for msg in messages[::-1] if msg.role != "tool" %}{% set ns.n = ns.n + loop.index %}{{ m(msg.content|trim, y=loop.revindex0) }}{% if msg.tool_calls is defined %}{% for c in msg.tool_calls %}{{ c.function.arguments|tojson(indent=2) }}{% endfor %}{% elif "</think>" in msg.content %}{{ msg.content.split("</think>")[-1].lstrip() }}{% else %}{{ (msg.content * 2)[1:-1]|upper }}{% endif %}{% endfor %}{{ tools|map(attribute="function.name")|join(", ") }}{{ ns.n if ns.n > 3 else raise_exception("few") }}' > "$out/corpus/seed_template_constructs"
# Past crashes (tests/fixtures/fuzz_regressions/<folder>/, stored without the selector byte) seed
# their parser again; encoder inputs go in twice, without and with special tokens (15 % 6 == 3, bit 2 set),
# request bodies as completions (5) and chat (11 % 6 == 5, bit 2 set).
declare -A selectors=([safetensors]='\x00' [config]='\x01' [tokenizer_json]='\x02' [encode]='\x03 \x0f' [chat_template]='\x04' [openai_request]='\x05 \x0b')
for folder in "${!selectors[@]}"; do
  for input in "$src/tests/fixtures/fuzz_regressions/$folder"/*; do
    [[ -f $input ]] || continue
    for selector in ${selectors[$folder]}; do
      { printf "$selector"; cat "$input"; } > "$out/corpus/regression_${folder}_${selector#\\x}_$(basename "$input")"
    done
  done
done
"$binary" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$out/corpus" 2>&1 | tail -n 15
