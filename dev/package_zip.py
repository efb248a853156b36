"""Build dist/sparknoise-<version>.zip: the pure-Python package for spark-submit --py-files.

Spark puts .zip, .egg and .py files given in --py-files on the driver's and executors' Python path
(not wheels). The zip holds the sparknoise package only; its third-party dependencies (numpy,
pandas, pyarrow, scipy, scikit-learn, pyyaml, matplotlib) must already be on the cluster's
Python, or travel in a packed virtualenv with --archives (see the README).

    python dev/package_zip.py [OUT_DIR]      # default: dist
"""

from __future__ import annotations

import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(out_dir: str = "dist") -> str:
    """Write the zip and return its path."""
    version: dict = {}
    exec(open(os.path.join(ROOT, "sparknoise", "_version.py")).read(), version)  # noqa: S102 - our own file
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"sparknoise-{version['__version__']}.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder, dirs, files in os.walk(os.path.join(ROOT, "sparknoise")):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".properties")):
                    full = os.path.join(folder, name)
                    zf.write(full, os.path.relpath(full, ROOT))
    return path


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "dist"))
