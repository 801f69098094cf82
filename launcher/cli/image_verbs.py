"""`launcher images build HARNESS...|all [--force]` and `launcher images ls`: the catalogue harness images
built on this machine from their recipes (launcher.catalog.recipes), through launcher.api."""

from __future__ import annotations

import argparse
import json


def add_parsers(sub) -> None:
    s = sub.add_parser("images", help="build catalogue harness images from PyPI for offline runs; list them")
    verbs = s.add_subparsers(dest="images_verb", required=True)
    b = verbs.add_parser(
        "build", help="build a harness's image and prepare its data caches (no-op if current)"
    )
    b.add_argument("harness", nargs="+", help="a harness with a recipe (`launcher images ls`), or all")
    b.add_argument("--force", action="store_true", help="rebuild the image and remake its data caches")
    ls = verbs.add_parser("ls", help="recipes, their image tag, whether built and whether data is ready")
    ls.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_images(args: argparse.Namespace) -> int:
    from launcher import api

    if args.images_verb == "build":
        api.build_images(args.harness, force=args.force, say=lambda line: print(line, flush=True))
        return 0
    from launcher.cli.render import table

    rows = api.images()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    def data(ready: dict[str, bool]) -> str:
        return ", ".join(f"{name}{'' if ok else ' (missing)'}" for name, ok in ready.items()) or "-"

    cells = [
        [r["harness"], r["image"], "yes" if r["built"] else "no", data(r["data"]), r["offline"]] for r in rows
    ]
    print(table(["HARNESS", "IMAGE", "BUILT", "DATA", "OFFLINE TASKS"], cells))
    return 0


COMMANDS = {"images": cmd_images}
