"""Fix llama-cpp-python 0.3.36's echoed prompt log-probabilities; applied once at image build.

With `echo` + `logprobs`, Llama._create_completion pairs prompt token i with row i of the logits, which is the
distribution that predicts token i+1 (row j of `_scores` is the output after evaluating token j). For models
whose tokenizer adds no BOS token (SmolLM2 among them) every echoed log-probability is therefore shifted by
one position, and log-likelihood scoring (lm-eval's local-completions) lands at chance. Upstream:
https://github.com/abetlen/llama-cpp-python/issues/1983 (open when this was written). After the patch token k
reads the row before its own position, the first token's entry is null (OpenAI's echo semantics) and the
non-echo and BOS cases are unchanged (they were already aligned).

A second hunk replaces the per-token Python sort of the whole vocabulary (49,152 entries for SmolLM2, about
25 ms a token) by numpy's argpartition for the top `logprobs` entries: same values, same order.

Usage: python patch_echo_logprobs.py /path/to/site-packages/llama_cpp/llama.py
Every hunk must match exactly once: a different llama-cpp-python version fails the build instead of being
patched blindly.
"""

import sys
from pathlib import Path

ALIGN_OLD = """            all_logprobs = Llama.logits_to_logprobs(self._scores)[token_offset:]
"""
ALIGN_NEW = """            # launcher patch (abetlen/llama-cpp-python#1983): all_tokens[k] sits at eval
            # position first + k and its distribution is the row before it; row -1 does not
            # exist (that entry is nulled below), so row 0 stands in for it.
            first = len(prompt_tokens) - len(all_tokens) + len(completion_tokens)
            first = first if echo else len(prompt_tokens)
            start = first - 1
            rows = self._scores[max(start, 0) : start + len(all_tokens)]
            if start < 0:
                rows = np.concatenate([rows[:1], rows])
            all_logprobs = Llama.logits_to_logprobs(rows)
"""
TOPK_OLD = """                sorted_logprobs = list(
                    sorted(
                        zip(logprobs_token, range(len(logprobs_token))), reverse=True
                    )
                )
"""
TOPK_NEW = """                # launcher patch: top-k by argpartition, not a sort of the whole vocabulary
                top_k = min(max(logprobs, 0), len(logprobs_token))
                top_ids = np.argpartition(-logprobs_token, top_k - 1)[:top_k] if top_k else []
                sorted_logprobs = sorted(
                    ((logprobs_token[i], int(i)) for i in top_ids), reverse=True
                )
"""
HUNKS = [(ALIGN_OLD, ALIGN_NEW), (TOPK_OLD, TOPK_NEW)]


def patch(text: str) -> str:
    for old, new in HUNKS:
        if text.count(old) != 1:
            raise SystemExit(f"patch_echo_logprobs: expected exactly one match of {old.strip()[:60]!r}")
        text = text.replace(old, new)
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1])
    path.write_text(patch(path.read_text()))
    print(f"patched {path}")
