#!/usr/bin/env python3
"""Generates tests/data/minilm_wordpiece_cases.json: expected WordPiece ids for the all-MiniLM-L6-v2
vocabulary, computed by HuggingFace `tokenizers` (an independent implementation of BERT's
tokenizer), for tests/test_tokenizer.cpp. Two HuggingFace tokenizers must agree on every case: one
built from vocab.txt (BertWordPieceTokenizer, lowercase) and the model's own tokenizer.json.

Usage: scripts/setup-minilm.sh && pip install tokenizers
       python3 tools/gen_wordpiece_cases.py [models/minilm] > tests/data/minilm_wordpiece_cases.json
"""
import json
import os
import sys

from tokenizers import BertWordPieceTokenizer, Tokenizer, __version__ as tokenizers_version

DEFAULT_MAX_LEN = 128
CASES = [
    ("Hello, world!", DEFAULT_MAX_LEN),
    ("The quick brown fox jumps over the lazy dog.", DEFAULT_MAX_LEN),
    ("unaffable", DEFAULT_MAX_LEN),
    ("Héllo wörld, ça va? Ñandú, Ærøskøbing, Straße.", DEFAULT_MAX_LEN),
    ("Crème brûlée costs €12.50 (about $13.60) — 5% off!", DEFAULT_MAX_LEN),
    ("Email me at john.doe+test@example.com or visit https://example.org/path?q=1&x=2.", DEFAULT_MAX_LEN),
    ("Numbers: 3.14159, 1,000,000 and 2^10 = 1024; -42 < 0 > -1.", DEFAULT_MAX_LEN),
    ("antidisestablishmentarianism supercalifragilisticexpialidocious", DEFAULT_MAX_LEN),
    ("a" * 120 + " short " + "b" * 100, DEFAULT_MAX_LEN),
    ("我爱北京天安门", DEFAULT_MAX_LEN),
    ("日本語のテキストとカタカナ、ひらがな。ガギグゲゴ", DEFAULT_MAX_LEN),
    ("한국어 문장입니다.", DEFAULT_MAX_LEN),
    ("Emoji: 😀🎉👍 and ❤️ hearts", DEFAULT_MAX_LEN),
    ("Tabs\tand\nnewlines\r\nand  multiple   spaces\u00a0nbsp\u3000ideographic", DEFAULT_MAX_LEN),
    ("Control\u0000chars\u0007here\u200band\ufeffthere\u00adsoft", DEFAULT_MAX_LEN),
    ("ÀÉÎÕÜ àéîõü ÇçÑñ ÅåØøŁłŒœ", DEFAULT_MAX_LEN),
    ("Ελληνικά: Καλημέρα κόσμε! ΆΈΉΊΌΎΏ", DEFAULT_MAX_LEN),
    ("Русский текст: Привет, мир! Ёжик и йогурт.", DEFAULT_MAX_LEN),
    ("Tiếng Việt có dấu: Nguyễn Thị Minh Khai", DEFAULT_MAX_LEN),
    ("Ünïcödé façade naïve coöperate résumé", DEFAULT_MAX_LEN),
    ("I can't — \"quotes\" 'single' «guillemets» ‘curly’ “double” …ellipsis", DEFAULT_MAX_LEN),
    ("C++ & C# are languages; so is F#. Use `code` | pipes ~ tildes ^ carets {braces} [brackets]",
     DEFAULT_MAX_LEN),
    ("The year 2023 saw GPT-4, BERT-base and ViT-S/16 models.", DEFAULT_MAX_LEN),
    ("ALL CAPS SENTENCE WITH ACRONYMS LIKE NASA AND UNESCO", DEFAULT_MAX_LEN),
    ("xyzzyplugh qwertyuiopasdfgh zxcvbnm", DEFAULT_MAX_LEN),
    ("Mixed 中文 and English 混合 text.", DEFAULT_MAX_LEN),
    ("Arabic: مرحبا بالعالم", DEFAULT_MAX_LEN),
    ("Hindi: नमस्ते दुनिया", DEFAULT_MAX_LEN),
    ("Math: ∑ ∫ √ ≈ ≠ ≤ ≥ ± × ÷ ∞ µ", DEFAULT_MAX_LEN),
    ("", DEFAULT_MAX_LEN),
    ("   \t\n  ", DEFAULT_MAX_LEN),
    ("This sentence is long enough that a max_len of sixteen truncates it well before the end.", 16),
    ("İstanbul'da ıspanak yedim.", DEFAULT_MAX_LEN),
    ("e\u0301cole combining a\u0308 and n\u0303", DEFAULT_MAX_LEN),
    ("Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３！", DEFAULT_MAX_LEN),
    ("Ligatures ﬁ ﬂ and ½ ¼ ² superscripts", DEFAULT_MAX_LEN),
    ("Ohm Ω omega Ω, Kelvin K, Angstrom Å", DEFAULT_MAX_LEN),
    ("short", 2),
]


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/minilm"
    from_vocab = BertWordPieceTokenizer(os.path.join(model_dir, "vocab.txt"), lowercase=True)
    from_json = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    from_json.no_padding()
    cases = []
    for text, max_len in CASES:
        outputs = []
        for tok in (from_vocab, from_json):
            tok.enable_truncation(max_length=max_len)
            outputs.append(tok.encode(text))
        assert outputs[0].ids == outputs[1].ids, (text, outputs[0].tokens, outputs[1].tokens)
        cases.append({"text": text, "max_len": max_len, "ids": outputs[0].ids,
                      "tokens": outputs[0].tokens})
    json.dump({"generator": f"tools/gen_wordpiece_cases.py, tokenizers {tokenizers_version}",
               "vocab": "all-MiniLM-L6-v2 vocab.txt (30522 tokens)", "cases": cases},
              sys.stdout, ensure_ascii=True, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
