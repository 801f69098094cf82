"""Write the Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) of a byte-level BPE GGUF model,
so that `transformers.AutoTokenizer.from_pretrained(OUT)` tokenizes as llama.cpp does, without torch.

    python3 gguf_tokenizer.py MODEL.gguf OUT

transformers 5.25 can read a GGUF's tokenizer itself (`gguf_file=`), but its GGUF reader imports torch;
this reads the same metadata with the `gguf` package (numpy only) and builds the tokenizer with
`tokenizers`. Only llama.cpp's `gpt2` tokenizer model is handled, with the pre-tokenizers whose splitting
the `tokenizers` library can express: `smollm` is llama.cpp's digit-by-digit split then the GPT-2 regex
(llama.cpp llama-vocab.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM), `gpt2`/`default` the GPT-2 regex alone.
The integration test checks the result against the served model's own tokenizer.
"""

import json
import os
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

CONTROL = 3  # llama.cpp token type of special tokens (gguf TokenType.CONTROL)
PRE_TOKENIZERS = {
    "smollm": lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    ),
    "gpt2": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
    "default": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
}


def metadata(path: str) -> dict:
    reader = GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}


def build(meta: dict) -> tuple[Tokenizer, dict]:
    model, pre = meta["tokenizer.ggml.model"], meta.get("tokenizer.ggml.pre", "default")
    if model != "gpt2" or pre not in PRE_TOKENIZERS:
        handled = ", ".join(PRE_TOKENIZERS)
        sys.exit(f"unsupported GGUF tokenizer {model}/{pre}: handled are gpt2 with {handled}")
    tokens = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = PRE_TOKENIZERS[pre]()
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    types = meta["tokenizer.ggml.token_type"]
    special = [t for t, ty in zip(tokens, types, strict=True) if ty == CONTROL]
    tok.add_special_tokens([AddedToken(t, special=True) for t in special])

    def name(key: str) -> str | None:
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if i is not None else None

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name("bos"),
        "eos_token": name("eos"),
        "unk_token": name("unknown"),
        "pad_token": name("padding"),
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "clean_up_tokenization_spaces": False,
    }
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return tok, config


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    tok, config = build(metadata(argv[0]))
    os.makedirs(argv[1], exist_ok=True)
    tok.save(os.path.join(argv[1], "tokenizer.json"))
    with open(os.path.join(argv[1], "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"wrote {argv[1]} ({tok.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main(sys.argv[1:])
