"""A simulator of the Proxmox VE 9 REST API (``/api2/json`` over HTTPS) for tests and demos.

Start it with ``python -m tools.pvesim --help``; see ``tools/pvesim/README.md``.
"""

__all__ = ["VERSION", "RELEASE", "REPOID"]

VERSION = "9.1.3"
RELEASE = "9.1"
REPOID = "a9a13b1d"
