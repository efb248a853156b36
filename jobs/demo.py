"""spark-submit entry point: `spark-submit jobs/demo.py [options]` = `sparknoise demo [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
