"""Headless Chromium for the report tests: found, or installed from Debian's package, or a skip reason."""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]


def find_or_install_chromium() -> tuple[str | None, str]:
    """(path to chromium, "") or (None, why it is unavailable). Installs Debian's chromium as root."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing Debian's package needs root (apt-get install chromium)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env,
                       capture_output=True, timeout=900, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        return None, f"installing Debian's chromium failed: {e} {detail.decode(errors='replace')[-300:]}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed chromium but it is not on PATH")


def headless(chromium: str, url: str, profile: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium once on ``url`` with a fresh profile folder."""
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=timeout)
