"""Our llama.cpp image returns echoed prompt log-probabilities aligned with the tokens they score.

llama-cpp-python 0.3.36 shifts them by one for models without a BOS token (abetlen/llama-cpp-python#1983);
images/llama-cpp/patch_echo_logprobs.py fixes that at build. Against the unpatched image
(launcher-llama-cpp:0.3.36) this test fails: the digits of `1, 2, 3, 4, 5, 6` get about -8 there.
"""

import json
import urllib.request

import pytest
from conftest import build_if_missing
from helpers import free_port, wait_for

from launcher.catalog import LLAMA_CPP_IMAGE

pytestmark = pytest.mark.docker


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/v1/models", timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def llama_server(docker_engine):
    image = build_if_missing(docker_engine, LLAMA_CPP_IMAGE, "scripts/build-llama-image.sh", LLAMA_CPP_IMAGE)
    port = free_port()
    container = docker_engine.containers.run(
        image,
        [
            "python3",
            "-m",
            "llama_cpp.server",
            "--model",
            "/models/model.gguf",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            "--n_threads",
            "2",
            "--logits_all",
            "true",
        ],
        network_mode="host",
        detach=True,
        auto_remove=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: up(url), timeout=120, what="llama.cpp server")
        yield url
    finally:
        container.stop(timeout=2)


def echo_logprobs(url: str, prompt: str) -> tuple[list[str], list[float | None], int]:
    out = post(
        url + "/v1/completions",
        {"prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1},
    )
    lp = out["choices"][0]["logprobs"]
    return lp["tokens"], lp["token_logprobs"], out["usage"]["prompt_tokens"]


def test_echoed_logprobs_score_the_token_they_stand_next_to(llama_server):
    tokens, logprobs, prompt_tokens = echo_logprobs(llama_server, "1, 2, 3, 4, 5, 6")
    # OpenAI's echo semantics: every prompt token, then the generated one; the first has no context
    assert "".join(tokens).startswith("1, 2, 3, 4, 5, 6")
    assert len(tokens) == len(logprobs) == prompt_tokens + 1
    assert logprobs[0] is None
    # the continuation of an obvious sequence is likely (patched: > -0.5; shifted: about -8)
    later_digits = [lp for tok, lp in zip(tokens, logprobs, strict=True) if tok in {"4", "5", "6"}]
    assert len(later_digits) == 3
    assert all(lp > -1.0 for lp in later_digits), list(zip(tokens, logprobs, strict=True))


def test_a_sentence_beats_its_scrambled_words(llama_server):
    """The sum over the echoed continuation ranks a natural ending above the same words out of order."""

    def continuation(ending: str) -> float:
        context = "The cat sat on the"
        tokens, logprobs, _ = echo_logprobs(llama_server, context + ending)
        offsets, total = 0, 0.0
        for tok, lp in zip(tokens, logprobs, strict=True):
            if offsets >= len(context + ending):
                break
            if offsets + len(tok) > len(context):
                total += lp
            offsets += len(tok)
        return total

    assert continuation(" mat and purred.") > continuation(" purred and mat.")
