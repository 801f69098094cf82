"""Where Slurm commands run: here, or on a login node over one reused SSH connection.

Every command is an argv list; over SSH it is sent as one shlex-quoted string. Secret values are only
ever written to the command's standard input.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from launcher.errors import LauncherError


def control_socket_dir() -> Path:
    """A short private folder for SSH's master sockets (a socket path must stay under 108 bytes)."""
    path = Path(tempfile.gettempdir()) / f"launcher-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise LauncherError(f"{path} is not a private folder of this user; remove it and run again")
    return path


class Local:
    """Commands on this machine; the invocation folder is the cluster's folder."""

    remote = False

    def run(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
        """A program that is not on PATH (no squeue on this machine) is a failed command (127, as a shell
        says it), which the caller reports for its own invocation, not an internal error."""
        try:
            return subprocess.run(argv, input=input, capture_output=True, text=True)
        except (FileNotFoundError, PermissionError) as err:
            return subprocess.CompletedProcess(
                argv, 127, "", f"{argv[0]}: {err.strerror} (not on this PATH?)"
            )

    def upload(self, local: Path, remote: str) -> None:
        """Nothing to copy: the folder is already where the jobs read it."""

    def download(self, remote: str, local: Path) -> None:
        """Nothing to copy back."""


class SSH(Local):
    """Commands on `host` over OpenSSH, one master connection reused (ControlMaster) for 2 minutes."""

    remote = True

    def __init__(self, host: str, user: str | None, port: int, options: tuple[str, ...]):
        self.target = f"{user}@{host}" if user else host
        self.base = [
            "ssh",
            "-p",
            str(port),
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={control_socket_dir()}/%C",
            "-o",
            "ControlPersist=120",
        ]
        for option in options:
            self.base += ["-o", option]

    def command(self, argv: list[str]) -> list[str]:
        """The local argv that runs `argv` on the login node (sent as one quoted string)."""
        # `--` before the destination: nothing after it is read as an ssh option, whatever the host is.
        return [*self.base, "--", self.target, shlex.join(argv)]

    def run(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(argv), input=input, capture_output=True, text=True)
        if proc.returncode == 255:  # ssh's own failure, not the command's
            reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise LauncherError(f"cannot reach {self.target} over SSH: {reason}")
        return proc

    def upload(self, local: Path, remote: str) -> None:
        """Copy the invocation folder to the cluster once (tar over the connection)."""
        # Into a side folder renamed into place: a copy cut short is never taken for a complete one.
        script = (
            'test -d "$1" && exit 0; rm -rf "$1.partial" && mkdir -p "$1.partial" '
            '&& tar -C "$1.partial" -x && mv "$1.partial" "$1"'
        )
        with subprocess.Popen(["tar", "-C", str(local), "-c", "."], stdout=subprocess.PIPE) as pack:
            proc = subprocess.run(
                self.command(["bash", "-c", script, "_", remote]),
                stdin=pack.stdout,
                capture_output=True,
                text=True,
            )
        if proc.returncode != 0:
            raise LauncherError(
                f"cannot copy the invocation to {self.target}:{remote}: {proc.stderr.strip()}"
            )

    def download(self, remote: str, local: Path) -> None:
        """Bring back stage records, progress, results and logs (not the per-sample checkpoint)."""
        # Not the checkpoint or the endpoint proxies' response caches (large), and not the launcher's own
        # log (open here, and only written here).
        argv = ["tar", "-C", remote, "-c", "--exclude=samples.jsonl", "--exclude=proxy/cache"]
        argv += ["--exclude=./logs/launcher.jsonl", "."]
        with subprocess.Popen(self.command(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as pack:
            unpack = subprocess.run(["tar", "-C", str(local), "-x"], stdin=pack.stdout, capture_output=True)
            err = pack.stderr.read()
        if pack.returncode or unpack.returncode:
            reason = (err.decode(errors="replace").strip().splitlines() or ["tar failed"])[-1]
            raise LauncherError(f"cannot read the invocation back from {self.target}:{remote}: {reason}")
