"""spark-submit entry point: `spark-submit jobs/apply.py [options]` = `sparknoise apply [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["apply", *sys.argv[1:]]))
