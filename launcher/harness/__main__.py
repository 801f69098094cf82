"""What runs inside the task container: no Hydra, no Docker; aiohttp and PyYAML only.

`python -m launcher.harness run --config /results/run_config.json` requests and scores one task;
`python -m launcher.harness execute /results` runs a code task's programs (in the sandbox container);
`python -m launcher.harness score /results` scores saved responses (and verdicts) again, no request.
"""

import sys

from launcher.harness import sigterm

if __name__ == "__main__":  # scoring workers are spawned and import this module as __mp_main__
    sigterm.install()  # before the slow imports: from here on a SIGTERM ends the harness with exit 143
    try:
        try:
            from launcher.harness.runner import main

            code = main(sys.argv[1:])
        finally:
            sigterm.settle()
    except sigterm.Terminated:  # outside a command (each reports its own): importing, parsing arguments
        code = sigterm.EXIT
    sys.exit(code)
