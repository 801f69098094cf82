"""The few Docker engine calls the executors make on this machine, by label: listing and stopping through
the docker CLI (the hot paths of status and kill), image checks and pulls through the Docker SDK."""

from __future__ import annotations

from functools import cached_property

from launcher.errors import LauncherError
from launcher.store.layout import LABEL_INVOCATION, LABEL_JOB

START_HINT = (
    "start it with `sudo systemctl start docker` (or `sudo dockerd &`), "
    "or install it with `sudo apt-get install -y docker.io`"
)


class Docker:
    def __init__(self, timeout: int = 10):
        self.timeout = timeout

    @cached_property
    def client(self):
        import docker  # heavy: only imported when a command needs the engine

        try:
            client = docker.from_env(timeout=self.timeout)
            client.ping()
        except Exception as err:
            raise LauncherError(f"Docker engine is not reachable ({_short(err)}); {START_HINT}") from None
        return client

    @staticmethod
    def missing_images(images: list[str]) -> list[str] | None:
        """The images not on this machine, by one `docker image inspect` (50 ms, where the SDK's import and
        ping take 0.5 s); None when the CLI cannot say (no engine, no CLI): ask the SDK then."""
        import subprocess

        if not images:
            return []
        try:
            proc = subprocess.run(
                ["docker", "image", "inspect", "--format", "{{.Id}}", *images],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode == 0:
            return []
        missing = [
            line.split("No such image:", 1)[1].strip()
            for line in proc.stderr.splitlines()
            if "No such image:" in line
        ]
        if not missing or not set(missing) <= set(images):
            return None  # another error, or names we cannot match: let the SDK check every image
        return [image for image in images if image in missing]

    def ensure_image(self, image: str, build_hint: str = "", pull: bool = True) -> None:
        import docker.errors

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        if build_hint:  # one of ours: no registry has it
            raise LauncherError(f"image {image} is not on this machine; {build_hint}")
        if not pull:
            raise LauncherError(
                f"image {image} is not on this machine and execution.pull is 'never'; build or pull it first"
            )
        try:
            self.client.images.pull(image)
        except Exception as err:
            raise LauncherError(
                f"image {image} is not on this machine and could not be pulled ({_short(err)}); "
                f"build it or pull it, then run again"
            ) from None

    def containers(self, invocation_id: str) -> dict[str, dict]:
        """job id -> {"status": created|running|exited|..., "id": ...} for the invocation's containers.

        One `docker ps` (about 0.1 s, where importing the SDK alone takes 0.5 s): a status refresh makes
        this call once whatever the number of tasks. The list needs no per-container inspect, so no race
        with --rm removing containers."""
        fmt = '{{.ID}}\t{{.State}}\t{{.Label "' + LABEL_JOB + '"}}'
        out = _docker_cli("ps", "--all", "--no-trunc", "--filter", _label(invocation_id), "--format", fmt)
        found = {}
        for line in out.splitlines():
            container_id, state, job = (line.split("\t") + ["", ""])[:3]
            found[job] = {"status": state, "id": container_id}
        return found

    def stop(self, invocation_id: str, grace: int) -> int:
        """docker stop (SIGTERM to the init, then SIGKILL after `grace` s) of every running container of the
        invocation, by one `docker stop` (the CLI stops them concurrently)."""
        found = _docker_cli("ps", "--quiet", "--no-trunc", "--filter", _label(invocation_id)).split()
        if found:
            # A container that ended meanwhile makes `docker stop` exit 1: gone is what we wanted.
            _docker_cli("stop", "--time", str(grace), *found, check=False, timeout=grace + 60)
        return len(found)


def _label(invocation_id: str) -> str:
    return f"label={LABEL_INVOCATION}={invocation_id}"


def _docker_cli(*args: str, check: bool = True, timeout: float = 30) -> str:
    """stdout of `docker ARGS` (the CLI the generated scripts use too); a failure is one LauncherError."""
    import subprocess

    try:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LauncherError(f"the docker command is not installed; {START_HINT}") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LauncherError(f"`docker {args[0]}` failed ({_short(err)}); {START_HINT}") from None
    if check and proc.returncode != 0:
        reason = _short(RuntimeError(proc.stderr)) if proc.stderr.strip() else f"exit {proc.returncode}"
        raise LauncherError(f"Docker engine is not reachable ({reason}); {START_HINT}")
    return proc.stdout


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
