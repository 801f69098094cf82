"""The few Docker engine calls the executors make on this machine, through the Docker SDK, by label."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
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
        """job id -> {"status": created|running|exited|..., "id": ...} for the invocation's containers."""
        # The low-level list: no per-container inspect, so no race with --rm removing containers.
        found = self.client.api.containers(all=True, filters={"label": f"{LABEL_INVOCATION}={invocation_id}"})
        return {c["Labels"].get(LABEL_JOB, ""): {"status": c["State"], "id": c["Id"]} for c in found}

    def stop(self, invocation_id: str, grace: int) -> int:
        """docker stop (SIGTERM to the init, then SIGKILL after `grace` s) for each running container."""
        found = [
            c["Id"]
            for c in self.client.api.containers(filters={"label": f"{LABEL_INVOCATION}={invocation_id}"})
        ]

        def stop_one(container_id: str) -> None:
            with contextlib.suppress(Exception):  # already gone: that is what we wanted
                self.client.api.stop(container_id, timeout=grace)

        if found:
            with ThreadPoolExecutor(max_workers=min(16, len(found))) as pool:
                list(pool.map(stop_one, found))
        return len(found)


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
