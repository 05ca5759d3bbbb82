#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/corpus.json: the tokenizer test strings (deterministic)."""
import json
import random
import sys

rng = random.Random(1234)
corpus = [
    "", " ", "  ", "\t", "\n", "\r\n", "Hello", "Hello world", " Hello world", "Hello  world", "Hello world ",
    "The quick brown fox jumps over the lazy dog.", "I'm sure you'll see they've done it, haven't they?",
    "DON'T SHOUT, I'M HERE", "it's it'S IT's", "naïve café résumé Ångström façade", "Straße über Äpfel",
    "Ελληνικά κείμενα", "Русский текст, пример.", "עברית", "العربية لغة جميلة", "हिन्दी भाषा", "ไทย ภาษา",
    "日本語のテキストです。", "中文文本，测试一下。", "한국어 텍스트", "混合 mixed テキスト text",
    "emoji 😀😃😄 done", "family 👨‍👩‍👧‍👦 zwj", "flags 🇫🇷🇯🇵", "skin 👍🏽 tone", "❤️ heart with VS16",
    "math ∑∫√∞ ≤ ≥ ≠", "arrows → ← ↑ ↓", "currency $€£¥₹", "quotes “smart” ‘single’ «guillemets»",
    "dash – em — ellipsis …", "non\u00a0breaking\u00a0space", "zero\u200bwidth\u200bspace", "tab\tseparated\tvalues",
    "line1\nline2\nline3", "para1\n\npara2", "trailing newline\n", "\n\nleading newlines", "spaces    inside   text",
    "    indented code", "mixed \t \n whitespace", "CRLF\r\nline", "\u3000ideographic space",
    "replacement \ufffd char", "<0xFF> looks like a byte", "\\x80\\xff escaped", "%E2%9C%93 url encoded",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "#include <stdio.h>",
    "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">text</div>", "{\"key\": [1, 2, 3], \"x\": null}",
    "https://example.com/path?q=1&r=two#frag", "user@example.com", "C:\\Windows\\System32", "a/b/c.txt",
    "snake_case_name camelCaseName PascalCase kebab-case", "__init__ __main__", "x+=1; y-=2; z*=3",
    "<|begin_of_text|>", "<|end_of_text|>", "text <|begin_of_text|> inside", "<s>", "</s>", "a <s> b </s> c",
    "<unk>", "<|im_start|>user\nhi<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>",
    "<|start_header_id|>user<|end_header_id|>", "not <|special", "<|begin_of_text", "<<s>>", "<s><s>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ab" * 50, "x" * 1000, "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏ", "ﬁ ligature ﬂ", "Å vs Å (composed vs decomposed)", "e\u0301 combining", "n\u0303o",
    "１２３ fullwidth ＡＢＣ", "ⅠⅡⅢ roman", "½ ¾ ² ³", "٠١٢٣ arabic digits", "१२३ devanagari digits",
    "!!!???...", "...", "---", "***bold***", "_under_", "~~strike~~", "`code`", "```python\nprint(1)\n```",
]
# Numbers of many lengths.
for length in range(1, 25):
    corpus.append("".join(rng.choice("0123456789") for _ in range(length)))
corpus += ["3.14159", "-42", "1,000,000", "1e-10", "0x1F", "12:30:45", "2026-11-24", "v1.2.3", "100%", "$19.99"]
# Whitespace runs.
for n in (2, 3, 4, 7, 16):
    corpus += [" " * n + "x", "x" + " " * n, "a" + " " * n + "b", "\n" * n, "\t" * n + "y"]
# Random mixtures from an alphabet covering the classes above.
alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`|") + \
    list("éüñçøåßÆŒ中文日本語한국어😀👍🏽✓→∑€") + ["\u200d", "\u00a0", "'s", "'ll", "<s>", "<|im_end|>"]
while len(corpus) < 320:
    corpus.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))))
json.dump(corpus, sys.stdout, ensure_ascii=False, indent=0)
