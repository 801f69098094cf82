"""launcher: run LLM evaluations against OpenAI-compatible endpoints in Docker containers."""

__version__ = "0.1.0"
