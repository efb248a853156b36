"""spark-submit entry point: `spark-submit jobs/annotators.py [options]` = `sparknoise annotators [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["annotators", *sys.argv[1:]]))
