# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox AI collector: polls Proxmox VE clusters, writes samples and alerts to PostgreSQL.

Installed by the ``proxmox_ai.hardening.monitoring`` role into a virtualenv
together with ``_sanitize.py`` (a verbatim copy of the collection's
``plugins/module_utils/_sanitize.py``, the one implementation of secret
scrubbing).  Entry points: ``python -m proxmox_ai_collector collect|api|security|check-config``.
"""

__version__ = "1.0.0"
