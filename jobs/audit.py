"""spark-submit entry point: `spark-submit jobs/audit.py [options]` = `sparknoise audit [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["audit", *sys.argv[1:]]))
