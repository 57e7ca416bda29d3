# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logging that cannot leak secrets: every record is formatted, then scrubbed by ``sanitize_log``.

``sanitize_log`` comes from ``_sanitize.py`` next to this file: the role copies
the collection's ``plugins/module_utils/_sanitize.py`` there unchanged, so the
collector, the callback plugin and the filter share one implementation.
"""

from __future__ import annotations

import logging
import sys

from ._sanitize import sanitize_log, sanitize_obj  # noqa: F401  pylint: disable=unused-import

__all__ = ["SanitizingFormatter", "get_logger", "sanitize_log", "sanitize_obj", "setup_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SanitizingFormatter(logging.Formatter):
    """Formats the whole record (message, arguments, traceback) and scrubs the result."""

    def format(self, record):
        return sanitize_log(super().format(record))


def setup_logging(level: str = "INFO", stream=None) -> None:
    """Route the root logger (and uvicorn's) through one scrubbing handler on stderr (the journal)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(SanitizingFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "urllib3"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger("proxmox_ai_collector." + name)
