"""spark-submit entry point: `spark-submit jobs/publish.py [options]` = `sparknoise publish [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", *sys.argv[1:]]))
