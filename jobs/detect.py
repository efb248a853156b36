"""spark-submit entry point: `spark-submit jobs/detect.py [options]` = `sparknoise detect [options]`."""

import sys

from sparknoise.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect", *sys.argv[1:]]))
