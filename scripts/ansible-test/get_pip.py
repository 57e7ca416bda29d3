#!/usr/bin/env python
"""Offline stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads ``get-pip-<version>.py`` from a host that the test
machines cannot reach, but looks in ``~/.ansible/test/cache/`` first.  This
file is copied there by ``scripts/sanity.sh``: it installs pip with the
standard library's ``ensurepip`` and then runs ``pip install`` with the
arguments ansible-test passes (minus the get-pip-only switches).
"""
import ensurepip
import os
import subprocess
import sys


def main():
    saved = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    # ensurepip sets PIP_CONFIG_FILE=/dev/null, which hides the machine's pip configuration.
    os.environ.clear()
    os.environ.update(saved)
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
