# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: ``python -m proxmox_ai_collector {collect,api,security,check-config} --config FILE``."""

from __future__ import annotations

import argparse
import signal
import sys

from . import __version__
from .config import ConfigError, load
from .logsafe import get_logger, sanitize_log, setup_logging

LOG = get_logger("main")


def _collect(args, config) -> int:
    from .collector import Collector  # pylint: disable=import-outside-toplevel

    collector = Collector(config)

    def stop(_signum, _frame):
        collector.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    collector.run(max_polls=args.polls)
    return 0


def _api(_args, config) -> int:
    from .api import serve  # pylint: disable=import-outside-toplevel

    return serve(config)


def _security(args, config) -> int:
    from .security import run  # pylint: disable=import-outside-toplevel

    return run(config, follow=not args.once)


def _check(_args, config) -> int:
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"ok: {len(config.endpoints)} endpoint(s), database {config.describe_db()}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="proxmox_ai_collector", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("collect", "poll the clusters and write to PostgreSQL"),
                       ("api", "serve /health, /nodes and /alerts"),
                       ("security", "turn security events of the journal into alerts"),
                       ("check-config", "validate a configuration file and exit")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--config", "-c", default="/etc/proxmox-ai/collector.yml")
        if name == "collect":
            cmd.add_argument("--polls", type=int, default=0, help="stop after N polls (0 = run until stopped)")
        if name == "security":
            cmd.add_argument("--once", action="store_true", help="read the journal once and exit")
        if name == "check-config":
            cmd.add_argument("--skip-nodes", action="store_true",
                             help="do not read the node configuration (it is written by proxmox_access)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config, load_endpoints=args.command == "collect"
                      or (args.command == "check-config" and not args.skip_nodes))
    except ConfigError as exc:
        print(sanitize_log(f"configuration error: {exc}"), file=sys.stderr)
        return 2
    setup_logging(config["log_level"])
    handlers = {"collect": _collect, "api": _api, "security": _security, "check-config": _check}
    return handlers[args.command](args, config)


if __name__ == "__main__":
    sys.exit(main())
