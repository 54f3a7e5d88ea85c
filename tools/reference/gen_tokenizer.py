"""Writes test/fixtures/tokenizer/: reference tokenizations from transformers' CLIP tokenizers.

The Hugging Face vocab.json / merges.txt are rebuilt from the shipped OpenAI BPE file
(assets/clip/bpe_simple_vocab_16e6.txt.gz) in HF's published layout, loaded by the slow
CLIPTokenizer, saved with save_pretrained (HF's canonical files) and converted to
CLIPTokenizerFast from those slow files, as AutoProcessor does for the CIDAS repositories.

Outputs:
  cases.json   fast ids, tokens, decoded text, slow (ftfy) ids for every case string,
               truncated ids where a case exceeds 77 tokens, and batch padding cases.
  vocab.json   digests of the fast tokenizer's id -> token table and merge list, plus samples.
  hf_files/    tokenizer_config.json and special_tokens_map.json with the content the CIDAS repos ship
               (bos/eos/unk as normalized AddedTokens, pad a plain string, model_max_length 77),
               and a vocab.json / merges.txt subset sufficient for the texts listed in
               cases.json "hf_files_texts", for exercising the folder loader.

Run: /work/.refvenv/bin/python tools/reference/gen_tokenizer.py
"""

import gzip
import hashlib
import json
import os
import random
import tempfile
import unicodedata

import ftfy
import transformers
from transformers import CLIPTokenizer, CLIPTokenizerFast
from transformers.models.clip.tokenization_clip import bytes_to_unicode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GZ = os.path.join(ROOT, "assets", "clip", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(ROOT, "test", "fixtures", "tokenizer")
NUM_MERGES = 49152 - 256 - 2

ADDED_TOKEN = {"lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", **ADDED_TOKEN},
    "do_lower_case": True,
    "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", **ADDED_TOKEN},
    "errors": "replace",
    "model_max_length": 77,
    "pad_token": "<|endoftext|>",
    "processor_class": "CLIPSegProcessor",
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>", **ADDED_TOKEN},
}
SPECIAL_TOKENS_MAP = {
    "bos_token": {"content": "<|startoftext|>", **ADDED_TOKEN},
    "eos_token": {"content": "<|endoftext|>", **ADDED_TOKEN},
    "pad_token": "<|endoftext|>",
    "unk_token": {"content": "<|endoftext|>", **ADDED_TOKEN},
}

PHRASES = [
    "a photo of a cat", "white plate on table", "man wearing black hat", "red car parked on street",
    "woman in blue dress", "large window", "tree behind fence", "small brown dog", "glass of water",
    "person riding bicycle", "sky", "grass", "wooden chair", "building with many windows",
    "black and white cat sleeping on couch", "stop sign", "people walking on sidewalk",
    "clouds in blue sky", "green leaves on branch", "boy holding umbrella", "dirty white sneakers",
    "street lamp", "water", "an elephant standing in the river", "two zebras grazing",
    "laptop on desk next to coffee mug", "train on tracks", "kite flying high", "surfboard",
    "the left half of the pizza", "tennis racket", "snow covered mountain", "parked motorcycles",
    "bowl of fruit", "cutting board", "a bird perched on a wire", "yellow taxi cab",
    "girl with long hair", "horse pulling cart", "tiled floor", "shadow of a man",
    "something to sit on", "the thing you drink from", "sheep", "giraffe's neck",
]
PUNCTUATION = [
    "hello, world!", "wait...", "what?!?!", "(parenthesised) [bracketed] {braced}", "a--b---c",
    "#hashtag @mention", "50% off!!!", "$$$", "e-mail", "well-known state-of-the-art",
    "\"quoted\"", "'single'", "semi;colon:colon", "a/b\\c|d", "~tilde~ `backtick`", "***", "?",
    "!!!???...,,,", "+-*/=<>", "c++ & c#", "x_y_z", "^caret^", "a.b.c.d", "...", "-",
]
NUMBERS = [
    "2024", "1,000,000", "3.14159", "-42", "+7", "1e-5", "0x1F", "12:30pm", "2024-01-04",
    "1/2 cup", "100%", "$19.99", "€5", "£3.50", "¥1000", "v1.2.3", "route 66", "7th floor",
    "1st 2nd 3rd 4th", "٣ arabic-indic three", "১২৩ bengali", "Ⅻ roman twelve", "²³ superscripts",
    "½ ¾ fractions", "①②③ circled", "０１２ full-width digits", "phone: +1 (555) 123-4567",
    "000", "12345678901234567890",
]
CONTRACTIONS = [
    "it's", "IT'S", "It's", "don't", "DON'T", "we're", "they've", "I'm", "you'll", "she'd",
    "it’s", "don’t", "I’m", "rock 'n' roll", "'tis", "o'clock", "the dog's bone", "dogs'",
    "'s", "''s", "it''s", "he'S", "ma'am", "y'all'd've", "can't won't shouldn't",
    "it`s", "it‘s", "l'homme", "aujourd'hui",
]
ACCENTS = [
    "café", unicodedata.normalize("NFD", "café"), "naïve résumé", unicodedata.normalize("NFD", "naïve résumé"),
    "Ångström", unicodedata.normalize("NFD", "Ångström"), "crème brûlée", "São Paulo", "Zürich",
    "façade", "jalapeño", "Dvořák", "Łódź", "ÉCOLE", "İstanbul", "straße", "STRASSE",
    "ΣΊΣΥΦΟΣ", "ὈΔΥΣΣΕΎΣ", "Москва", "ПРИВЕТ мир", "Ελληνικά", "ǅemal", "ﬁsh ﬂour",
    "e\u0301\u0301", "a\u0308\u0304", "\u0301", "x\u20dd", "Việt Nam", "tiếng Việt",
    "ḱṷṓn", "ÅÄÖ åäö",
]
CJK = [
    "猫", "一只猫", "東京タワー", "こんにちは世界", "カタカナ", "한국어 텍스트", "中文，标点。",
    "漢字とかな", "ｶﾀｶﾅ half-width", "ＡＢＣ full-width", "cat 猫 chat", "「引用」", "〜波〜",
    "龍", "𠀋 extension b", "ㄅㄆㄇ bopomofo", "ไทย ภาษา", "हिन्दी", "עברית", "العربية",
]
EMOJI = [
    "😀", "I ❤️ NY", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇺🇸", "🇯🇵🇫🇷", "🏳️‍🌈", "🐱🐶", "☃", "★☆",
    "🍕 pizza", "dog🐕", "👋🏻👋🏼👋🏽👋🏾👋🏿", "🧑🏽‍🚀", "1️⃣", "©®™", "♀♂", "🤷‍♂️",
]
WHITESPACE = [
    "", " ", "   ", "\t", "\n", "\r\n", " \t\n ", "a  b", "a\tb", "a\nb", "a\r\nb", "  leading",
    "trailing  ", "a\u00a0b", "a\u2003b", "a\u3000b", "a\u200bb", "a\ufeffb", "\ufeff", "a\u0085b",
    "a\u180eb", "a\u2028b", "a\u202fb", "a\x0bb", "a\x0cb", "a\x1cb", "\x1cx\x1d", "a\u00adb",
    "line one\nline two\n\nline three", "tab\t\tseparated\tvalues", "\u00a0nbsp\u00a0",
    "a\x00b", "\x7f", "a\u200db", "a\u2060b",
]
SPECIALS = [
    "<|endoftext|>", "<|startoftext|>", "a<|endoftext|>b", "a <|endoftext|> b",
    "<|startoftext|>cat<|endoftext|>", "<|ENDOFTEXT|>", "<|EndOfText|> x", "<|endoftext|",
    "endoftext", "<|endoftext|><|endoftext|>", "</w>", "cat</w>", "<|endof text|>",
    "<| endoftext |>", "x<|startoftext|>", "<|endoftext|>\n<|endoftext|>",
]
MIXED = [
    "CamelCaseWord", "UPPER lower MiXeD", "HeLLo WoRLD", "iPhone", "McDonald's", "eBay",
    "ALL CAPS PHRASE", "TeSt123abc", "a1b2c3", "abc123def", "H2O", "COVID-19", "R2-D2", "mp3",
]
URLS = [
    "https://example.com/path?q=1&x=y#frag", "http://www.test.org", "www.example.co.uk",
    "user@example.com", "ftp://files.example.net/a_b-c.txt", "example.com/search?q=cat+dog",
    "https://en.wikipedia.org/wiki/Café", "C:\\Users\\name\\file.txt", "/usr/local/bin",
]
HTML = [
    "&amp;", "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot;", "&#39;apos&#39;",
    "&#x27;", "&nbsp;", "<b>bold</b>", "<img src=\"x.png\">", "a &copy; b", "&eacute;t&eacute;",
    "Ã©", "cafÃ©", "â€™", "donâ€™t", "&AMP;",
]
MISC = [
    "\u2018curly\u2019 \u201cquotes\u201d", "«guillemets»", "„low quotes“", "—em dash— –en dash–",
    "…", "•bullet", "°C", "±", "×÷", "∑∫∂", "→←↑↓", "§¶", "µ", "Ω", "Å", "K", "™",
    "\U0001d400\U0001d401", "ℌ", "ℕ", "\U0001f600" * 3, "\U000e0001", "\ue000 private use",
    "\ufffd", "ʼ modifier apostrophe", "ǆ", "ﬃ", "Ⅷ", "㎏", "ｐｙｔｈｏｎ", "ℹ", "x²", "H₂O",
]
LONG = [
    " ".join(["white plate on table"] * 30),
    "a" * 300,
    "abcdefghijklmnopqrstuvwxyz" * 8,
    " ".join(str(i) for i in range(80)),
    ", ".join(["cat"] * 40),
    "word " * 74 + "end",
    " ".join(["x"] * 75),
    " ".join(["x"] * 76),
    "🐱" * 30,
    "supercalifragilisticexpialidocious " * 10,
]


def generated_cases(rng):
    """Seeded combinations of short pieces from every category, mixed with random separators."""
    pools = [PHRASES, PUNCTUATION, NUMBERS, CONTRACTIONS, ACCENTS, CJK, EMOJI, MIXED, URLS, HTML, MISC]
    separators = [" ", "  ", "\t", "\n", "", ",", " - ", "\u00a0", "'", "’"]
    out = []
    while len(out) < 60:
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 4))]
        text = ""
        for i, part in enumerate(parts):
            text += (rng.choice(separators) if i else "") + part
        if rng.random() < 0.3:
            text = text.upper()
        if text not in out:
            out.append(text)
    return out


def build_hf_files(directory):
    """Writes vocab.json and merges.txt in HF's layout from the OpenAI BPE file."""
    with gzip.open(GZ, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def load_tokenizers(work):
    raw = os.path.join(work, "raw")
    os.makedirs(raw)
    build_hf_files(raw)
    slow = CLIPTokenizer(os.path.join(raw, "vocab.json"), os.path.join(raw, "merges.txt"))
    canonical = os.path.join(work, "canonical")
    slow.save_pretrained(canonical)
    for name, content in (("tokenizer_config.json", TOKENIZER_CONFIG), ("special_tokens_map.json", SPECIAL_TOKENS_MAP)):
        with open(os.path.join(canonical, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2)
    slow = CLIPTokenizer.from_pretrained(canonical)
    fast = CLIPTokenizerFast.from_pretrained(canonical)
    assert fast.bos_token_id == 49406 and fast.eos_token_id == 49407 and fast.pad_token_id == 49407
    # The published model-card example, as a check that the rebuilt files are HF's.
    assert fast("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert slow.fix_text is not None, "ftfy must be installed for the slow reference"
    return slow, fast, canonical


def sha256_lines(items):
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


def vocab_digest(fast):
    model = json.loads(fast.backend_tokenizer.to_str())["model"]
    vocab = model["vocab"]
    by_id = [None] * len(vocab)
    for tok, i in vocab.items():
        by_id[i] = tok
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    samples = {str(i): by_id[i] for i in [0, 1, 64, 93, 187, 188, 255, 256, 320, 511, 512, 513, 1125, 2368, 49405]}
    return {
        "vocab_size": len(by_id),
        "tokens_by_id_sha256": sha256_lines(by_id),
        "num_merges": len(merges),
        "merges_sha256": sha256_lines(merges),
        "samples": samples,
        "first_merges": merges[:5],
        "last_merges": merges[-5:],
        "added_tokens": {str(k): v.content for k, v in fast.added_tokens_decoder.items()},
    }


def case_record(text, slow, fast):
    ids = fast(text)["input_ids"]
    record = {
        "text": text,
        "ids": ids,
        "tokens": fast.tokenize(text),
        "decoded": fast.decode(ids),
        "decoded_skip_special": fast.decode(ids, skip_special_tokens=True),
        "slow_ids": slow(text)["input_ids"],
    }
    if len(ids) > 77:
        record["truncated_ids"] = fast(text, truncation=True)["input_ids"]
    return record


def batch_records(fast):
    batches = [
        (["a photo of a cat", "white plate on table", "sky"], {"padding": True}),
        (["a photo of a cat", "white plate on table", "sky"], {"padding": "longest"}),
        (["man wearing black hat", ""], {"padding": "max_length"}),
        (["short", "a much longer phrase with many words in it"], {"padding": "max_length", "max_length": 12, "truncation": True}),
        (["short", "a much longer phrase with many words in it"], {"padding": True, "max_length": 6, "truncation": True}),
        (["one", "two words"], {"padding": False}),
        ([" ".join(["word"] * 90), "cat"], {"padding": True, "truncation": True}),
        ([" ".join(["word"] * 90), "cat"], {"padding": True}),
        (["cat", "dog"], {"padding": "max_length", "max_length": 4}),
        (["a b c d e f g"], {"truncation": True, "max_length": 5}),
        (["single"], {"padding": "max_length"}),
    ]
    out = []
    for texts, options in batches:
        enc = fast(texts, **options)
        out.append({"texts": texts, "options": options, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return out


def hf_files_subset(slow, canonical, directory, texts):
    """A reduced, self-consistent vocab.json / merges.txt holding the merges that BPE applies to `texts`.

    BPE only ever applies the lowest-ranked pair present, so keeping exactly the applied merges (in their
    original relative order) reproduces the full tokenizer on these texts; ids keep their original values.
    """
    os.makedirs(directory, exist_ok=True)
    merge_of = {"".join(m): m for m in slow.bpe_ranks}
    needed = set()

    def decompose(token):
        if token in merge_of and merge_of[token] not in needed:
            needed.add(merge_of[token])
            for part in merge_of[token]:
                decompose(part)

    for text in texts:
        for token in slow.tokenize(text):
            decompose(token)
    merges = sorted(needed, key=lambda m: slow.bpe_ranks[m])
    kept = set(bytes_to_unicode().values())
    kept |= {s + "</w>" for s in kept} | {"".join(m) for m in merges} | {"<|startoftext|>", "<|endoftext|>"}
    vocab = {tok: i for tok, i in slow.encoder.items() if tok in kept}
    write_text(os.path.join(directory, "vocab.json"), json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_text(os.path.join(directory, "merges.txt"), "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        with open(os.path.join(canonical, name), encoding="utf-8") as f:
            write_text(os.path.join(directory, name), f.read())


def main():
    rng = random.Random(20240104)
    fixed = PHRASES + PUNCTUATION + NUMBERS + CONTRACTIONS + ACCENTS + CJK + EMOJI + WHITESPACE + SPECIALS + MIXED + URLS + HTML + MISC + LONG
    texts = []
    for text in fixed + generated_cases(rng):
        if text not in texts:
            texts.append(text)
    with tempfile.TemporaryDirectory() as work:
        slow, fast, canonical = load_tokenizers(work)
        os.makedirs(OUT, exist_ok=True)
        cases = {
            "transformers_version": transformers.__version__,
            "ftfy_version": ftfy.__version__,
            "model_max_length": fast.model_max_length,
            "cases": [case_record(t, slow, fast) for t in texts],
            "batches": batch_records(fast),
            "hf_files_texts": PHRASES,
        }
        write_json(os.path.join(OUT, "cases.json"), cases)
        write_json(os.path.join(OUT, "vocab.json"), vocab_digest(fast))
        hf_files_subset(slow, canonical, os.path.join(OUT, "hf_files"), PHRASES)
    print(f"{len(texts)} cases, {sum(c['ids'] != c['slow_ids'] for c in cases['cases'])} where slow differs")


def write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}-{random.getrandbits(32):08x}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, obj):
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
