"""spark-submit entry point: `spark-submit jobs/review.py [options]` = `sparknoise review export|import [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["review", *sys.argv[1:]]))
