# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: pg_scram_sha256
short_description: The SCRAM-SHA-256 verifier PostgreSQL stores for a password
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Returns C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>) for the password, with a random salt,
    exactly as PostgreSQL computes it. C(community.postgresql.postgresql_user) and C(ALTER ROLE ... PASSWORD)
    accept it in place of the password, so the password itself never reaches the server, its logs or
    C(pg_stat_statements).
  - Returns V(null) for a password that is not ASCII (PostgreSQL normalises those with SASLprep first); pass the
    password itself then.
  - Not deterministic (random salt).
options:
  _input:
    description: The password.
    type: str
    required: true
  iterations:
    description: PBKDF2 iterations (PostgreSQL's default is 4096).
    type: int
    default: 4096
"""

EXAMPLES = r"""
- name: Set a role's password without sending it to the server
  community.postgresql.postgresql_user:
    name: proxmox_user
    password: "{{ vault_pg_password | proxmox_ai.hardening.pg_scram_sha256 | default(vault_pg_password, true) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The verifier, or V(null) for a non-ASCII password.
  type: str
"""

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_plan import scram_sha256


def pg_scram_sha256(password, iterations=4096):
    """SCRAM-SHA-256 verifier of ``password``."""
    return scram_sha256(password, iterations=iterations)


class FilterModule(object):
    """PostgreSQL password verifier."""

    def filters(self):
        return {"pg_scram_sha256": pg_scram_sha256}
