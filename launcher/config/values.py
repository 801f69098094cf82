"""Pure checks on single config values: secrets, control characters, image references, shown values.

No ConfigError here: each function answers a question; the boundary decides what to say.
"""

from __future__ import annotations

import math
import re
from collections import Counter

NOT_SHOWN = "(value not shown)"

# Prefixes of well-known credential formats (Hugging Face, OpenAI, NVIDIA API catalogue, GitHub, AWS,
# Slack, GitLab): a value starting with one of these and long enough is a secret, whatever else it is.
SECRET_PREFIXES = (
    "hf_",
    "sk-",
    "nvapi-",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "AKIA",
    "xoxb-",
    "xoxp-",
    "glpat-",
)
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-+/=.]+$")


def looks_secret(value: object) -> bool:
    """True for a string that looks like a credential: a known prefix, or long, random-looking text.

    False positives only cost a hidden value in an error; names like HF_TOKEN_FOR_GPQA or model ids like
    meta/llama-3.1-8b-instruct stay visible (no digits+mixed case, or low entropy, or separators)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if any(text.startswith(p) and len(text) >= len(p) + 12 for p in SECRET_PREFIXES):
        return True
    if len(text) < 20 or not _TOKEN_CHARS.match(text) or text.startswith(("/", "./", "http")):
        return False
    # The longest run between separators: model ids (Qwen/Qwen3-4B-Instruct-2507) are short words.
    core = max(re.split(r"[/._-]", text), key=len)
    classes = sum(bool(re.search(c, core)) for c in ("[a-z]", "[A-Z]", "[0-9]"))
    return len(core) >= 16 and classes == 3 and _entropy(core) >= 3.3


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def show(value: object, width: int = 60) -> str:
    """A value for an error message: its repr, shortened, or NOT_SHOWN when it may be a secret."""
    if looks_secret(value):
        return NOT_SHOWN
    text = repr(value)
    return f"{text[:width]}..." if len(text) > width else text


def control_character(text: str, allow_newlines: bool = False) -> str | None:
    """The first character that could end a script line or a command-line argument early, as a name
    (e.g. 'a newline', 'U+0000'), or None. Tabs and newlines pass only where allow_newlines (free text
    that is written to its own file, never into a line)."""
    for ch in text:
        if allow_newlines and ch in "\n\t":
            continue
        if not ch.isprintable():
            return {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL byte"}.get(
                ch, f"the control character U+{ord(ch):04X}"
            )
    return None


# Variables that change how programs load (the shell's startup file, the dynamic loader, Python's path and
# startup, other interpreters' option variables) or where they connect or whom they trust (the docker
# engine, HTTP proxies, CA bundles, ssh/git transports): an env file or a host-variable name must not set
# or export them into the launcher, run_all.sh, sbatch, the proxy or the exporters.
PROGRAM_NAMES = frozenset(
    {
        "PATH", "HOME", "IFS", "ENV", "SHELL", "SHELLOPTS", "BASHOPTS", "CDPATH", "GLOBIGNORE", "PS4",
        "PROMPT_COMMAND", "TMPDIR", "NODE_OPTIONS", "NODE_PATH", "PERL5LIB", "PERL5OPT", "PERLLIB",
        "RUBYOPT", "RUBYLIB", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "LAUNCHER_PROXY_TOKEN",
        "http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy", "SSH_AUTH_SOCK", "SSH_ASKPASS",
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL",
    }
)  # fmt: skip
PROGRAM_PREFIXES = ("LD_", "DYLD_", "BASH_", "PYTHON", "DOCKER_", "MALLOC_", "GLIBC_")


def changes_how_programs_run(name: str) -> bool:
    return name in PROGRAM_NAMES or name.lower() in PROGRAM_NAMES or name.startswith(PROGRAM_PREFIXES)


def terminal_safe(text: str, keep: str = "") -> str:
    """Text from a task or an endpoint (a log line, a reason, a metric name) made safe to print: every
    character a terminal could act on (C0/C1 controls such as ESC, DEL, bidi and other invisible format
    characters: anything not printable) becomes a visible escape (`\\x1b`, `\\u202e`). `keep`: controls
    let through as they are ("\\n\\t" for log output)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in text)


# The image reference grammar of the Docker distribution project (reference/regexp.go, as documented in
# github.com/distribution/reference): [domain[:port]/]path[:tag][@digest], path components lowercase.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
)
_IMAGE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def is_image_reference(text: str) -> bool:
    """True for a well-formed image reference (`name[:tag][@digest]`, optional registry host)."""
    if len(text) > 255 or text.startswith("-"):
        return False
    first, sep, _ = text.partition("/")
    # A first component with '.' or ':' or 'localhost' is a registry host and may have capitals.
    if sep and not ("." in first or ":" in first or first == "localhost") and first != first.lower():
        return False
    return bool(_IMAGE.match(text))
