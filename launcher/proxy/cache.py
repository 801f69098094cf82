"""The response cache on disk, shared by every proxy given the same `caching_dir`.

Format (owned here): the directory holds segment files `*.seg`, one per proxy process, each a sequence of
records `<key> <length>\\n<body>\\n` (key: 64 hex chars, body: the upstream's response as it came). A proxy
indexes every segment at start, then appends to its own: one write per new entry instead of creating a
file (~100 us of CPU on ext4 here), no locks since no two processes write the same file. A record cut
short (a crash mid-write) ends that segment's index; the entries before it stay usable. Entries another
proxy writes while this one runs are seen by the next proxy (a new invocation or a resume). The folder is
the user's own (0700; another user's is refused) and a segment is read only if it is a regular file of the
user's (anything else is skipped with a warning): an entry is an answer the proxy serves as the model's.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import uuid
from pathlib import Path

KEY_LEN = 64


def open_own(path: Path) -> int | None:
    """A read fd of a segment that is a regular file owned by this user (no link followed), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
        return fd
    os.close(fd)
    return None


def scan(fd: int) -> list[tuple[str, int, int]]:
    """(key, body offset, body length) of every whole record of one segment."""
    records = []
    with os.fdopen(os.dup(fd), "rb") as seg:
        size = os.fstat(seg.fileno()).st_size
        while True:
            header = seg.readline()
            if not header.endswith(b"\n"):
                break
            parts = header.split()
            if len(parts) != 2 or len(parts[0]) != KEY_LEN or not parts[1].isdigit():
                break
            offset, length = seg.tell(), int(parts[1])
            if offset + length + 1 > size:
                break
            seg.seek(length, os.SEEK_CUR)
            if seg.read(1) != b"\n":
                break
            records.append((parts[0].decode(), offset, length))
    return records


class ResponseCache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(self.dir)
        if st.st_uid != os.getuid():
            raise PermissionError(errno.EPERM, "the cache folder belongs to another user", str(self.dir))
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(self.dir, 0o700)
        self.readers: dict[str, int] = {}  # segment name -> read fd
        self.index: dict[str, tuple[str, int, int]] = {}
        segments = []
        for path in self.dir.glob("*.seg"):
            fd = open_own(path)
            if fd is None:
                print(
                    f"warning: cache segment {path} skipped: not a regular file of this user", file=sys.stderr
                )
                continue
            self.readers[path.name] = fd
            segments.append((os.fstat(fd).st_mtime_ns, path.name, fd))
        for _, name, fd in sorted(segments):  # oldest segment first, so a newer entry for the same key wins
            for key, offset, length in scan(fd):
                self.index[key] = (name, offset, length)
        used = {name for name, _, _ in self.index.values()}
        for name in [n for n in self.readers if n not in used]:  # wholly superseded: not read again
            os.close(self.readers.pop(name))
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}.seg"
        self.fd: int | None = None
        self.size = 0

    def __len__(self) -> int:
        return len(self.index)

    def get(self, key: str) -> bytes | None:
        entry = self.index.get(key)
        if entry is None:
            return None
        name, offset, length = entry
        fd = self.readers[name]  # opened (and checked) at start, or our own segment's
        data = os.pread(fd, length, offset)
        return data if len(data) == length else None

    def put(self, key: str, body: bytes) -> None:
        if self.fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
            self.fd = os.open(self.dir / self.name, flags, 0o600)
            self.readers[self.name] = os.open(
                self.dir / self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        header = f"{key} {len(body)}\n".encode()
        os.write(self.fd, header + body + b"\n")
        self.index[key] = (self.name, self.size + len(header), len(body))
        self.size += len(header) + len(body) + 1

    def close(self) -> None:
        for fd in [*self.readers.values(), *([self.fd] if self.fd is not None else [])]:
            os.close(fd)
        self.readers, self.fd = {}, None
