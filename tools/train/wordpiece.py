"""BERT-uncased WordPiece in plain Python, following the same rules as include/qtx/io/wordpiece.hpp:
lower-case, strip accents (NFD, drop Mn), split on whitespace and punctuation (and around CJK
ideographs), then greedy longest-match ##-pieces per word ([UNK] for a word that does not split,
or longer than 100 characters). Sequences are [CLS] pieces [SEP], truncated to max_len.
"""
import unicodedata

MAX_WORD_CHARS = 100


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokens(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        out.append(" " if ch in "\t\n\r" or unicodedata.category(ch) == "Zs" else ch)
    text = "".join(out).lower()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    words, cur = [], []
    for ch in text:
        if ch.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
        elif _is_punctuation(ch) or _is_cjk(ord(ch)):
            if cur:
                words.append("".join(cur))
                cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


class WordPiece:
    def __init__(self, vocab_path):
        self.tokens = [line.rstrip("\n") for line in open(vocab_path, encoding="utf-8")]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.cls, self.sep = self.ids["[CLS]"], self.ids["[SEP]"]
        self.pad, self.unk, self.mask = self.ids["[PAD]"], self.ids["[UNK]"], self.ids["[MASK]"]

    def word_pieces(self, word):
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.ids:
                    found = self.ids[sub]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces

    def encode(self, text, max_len=128):
        ids = [self.cls]
        for w in basic_tokens(text):
            ids.extend(self.word_pieces(w))
        ids = ids[: max_len - 1]
        ids.append(self.sep)
        return ids
