"""The proxy's on-disk pieces: cache files, the request log's caps and redaction."""

import json
import os
import stat

from helpers import unavailable

from launcher.proxy.cache import ResponseCache
from launcher.proxy.reqlog import RequestLog
from launcher.proxy.settings import LogSettings


def test_cache_roundtrip_and_shared(tmp_path):
    first = ResponseCache(tmp_path / "c")
    assert first.get("ab" * 32) is None
    first.put("ab" * 32, b'{"x": "\xc3\xa9"}')
    first.put("cd" * 32, b"line one\nline two\n")
    assert first.get("ab" * 32) == b'{"x": "\xc3\xa9"}'
    first.close()
    second = ResponseCache(tmp_path / "c")  # the next proxy (invocation) sees what the first wrote
    assert second.get("cd" * 32) == b"line one\nline two\n" and len(second) == 2
    second.put("ab" * 32, b"newer")  # the newer entry wins for whoever indexes later
    second.close()
    assert ResponseCache(tmp_path / "c").get("ab" * 32) == b"newer"


def test_cache_torn_tail_keeps_earlier_entries(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    cache.put("ab" * 32, b"whole")
    cache.put("cd" * 32, b"cut short")
    cache.close()
    [segment] = (tmp_path / "c").glob("*.seg")
    segment.write_bytes(segment.read_bytes()[:-4])  # a crash in the middle of the second write
    again = ResponseCache(tmp_path / "c")
    assert again.get("ab" * 32) == b"whole" and again.get("cd" * 32) is None


def test_cache_folder_is_private_and_foreign_segments_are_skipped(tmp_path, capsys):
    """N3: the folder is 0700 (made so if it was wider); a segment that is a link, a FIFO or not the
    user's own is never indexed: a planted answer would be served as the model's."""
    shared = tmp_path / "c"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    planted = tmp_path / "planted.seg"
    planted.write_bytes(b"ab" * 32 + b" 6\nforged\n")
    (shared / "link.seg").symlink_to(planted)
    os.mkfifo(shared / "fifo.seg")
    cache = ResponseCache(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700
    assert cache.get("ab" * 32) is None and len(cache) == 0  # and no hang on the FIFO
    err = capsys.readouterr().err
    assert "link.seg skipped" in err and "fifo.seg skipped" in err
    cache.put("cd" * 32, b"mine")
    cache.close()
    (seg,) = shared.glob(f"{os.getpid()}-*.seg")
    assert stat.S_IMODE(seg.stat().st_mode) == 0o600
    assert ResponseCache(shared).get("cd" * 32) == b"mine"


def test_cache_skips_a_segment_of_another_user(tmp_path, capsys):
    if os.getuid() != 0:
        unavailable("making a file another user's needs root", "run the suite as root (the CI image does)")
    (tmp_path / "c").mkdir(mode=0o700)
    seg = tmp_path / "c" / "other.seg"
    seg.write_bytes(b"ab" * 32 + b" 6\nforged\n")
    os.chown(seg, 65534, 65534)
    assert ResponseCache(tmp_path / "c").get("ab" * 32) is None
    assert "other.seg skipped" in capsys.readouterr().err


def test_request_log_redacts_and_caps(tmp_path):
    path = tmp_path / "log.jsonl"
    log = RequestLog(path, LogSettings(enabled=True, max_requests=2), ("sk-secret",))
    for i in range(4):
        log.record(
            "/v1/completions", 200, "miss", 0.01, {"prompt": f"p{i} sk-secret"}, b'{"echo": "sk-secret"}'
        )
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and log.dropped == 2
    assert "sk-secret" not in path.read_text()
    assert json.loads(lines[0])["request"]["prompt"] == "p0 <redacted>"


def test_request_log_byte_cap_and_sampling(tmp_path):
    log = RequestLog(tmp_path / "a.jsonl", LogSettings(enabled=True, max_bytes=400), ())
    for _ in range(10):
        log.record("/v1/completions", 200, "off", 0.0, {"prompt": "x" * 100}, b"not json")
    log.close()
    assert 0 < (tmp_path / "a.jsonl").stat().st_size <= 400 and log.dropped > 0
    sampled = RequestLog(tmp_path / "b.jsonl", LogSettings(enabled=True, sample_rate=0.0), ())
    sampled.record("/v1/completions", 200, "off", 0.0, {}, b"{}")
    sampled.close()
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_only_whole_answers_are_cached():
    """A malformed 200 (a torn or broken body) must not be cached: every retry would get it back."""
    from launcher.proxy.server import well_formed

    assert well_formed(b'{"choices": [{"message": {"content": "ok"}}]}')
    for broken in (b'{"choices": [', b"<html>oops</html>", b'{"choices": []}', b"[]", b'{"error": "x"}'):
        assert not well_formed(broken), broken
