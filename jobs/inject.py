"""spark-submit entry point: `spark-submit jobs/inject.py [options]` = `sparknoise inject [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["inject", *sys.argv[1:]]))
