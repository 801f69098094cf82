"""Export failures: one line naming what failed and how to retry; results are never touched."""

from __future__ import annotations

from launcher.errors import LauncherError


class ExportFailed(LauncherError):
    exit_code = 1  # not bad input: the destination failed


def missing_extra(extra: str, module: str) -> LauncherError:
    return LauncherError(f"--dest {extra} needs the {module} package: pip install 'launcher[{extra}]'")


def failed(dest: str, what: str, err: BaseException, retry: str) -> ExportFailed:
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
    return ExportFailed(
        f"export to {dest} failed for {what}: {first}; the results are unchanged; retry with: {retry}"
    )
