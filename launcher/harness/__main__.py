import sys

from launcher.harness.runner import main

sys.exit(main(sys.argv[1:]))
