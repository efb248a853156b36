"""spark-submit entry point: `spark-submit jobs/evaluate.py [options]` = `sparknoise evaluate [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
