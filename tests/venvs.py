"""A virtualenv that sees this test environment's packages but not sparknoise, like a cluster's or a
fresh machine's Python: its site-packages names ours in a .pth line, so the packages there import, but
the .pth files there (sparknoise's editable install) are not run. No network, no pip inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig


def python_without_sparknoise(venv) -> tuple[str, str]:
    """(the virtualenv's python, its site-packages folder), created at ``venv``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = os.path.join(str(venv), "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return python, site
