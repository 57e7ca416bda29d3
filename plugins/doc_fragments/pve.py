# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Shared documentation of the proxmox_ai.hardening.pve_* modules."""

    # Connection options, built by pve_common_argument_spec() in module_utils/_pve.py.
    DOCUMENTATION = r"""
options:
  api_host:
    description:
      - Host name or IP address of a Proxmox VE node that serves the API.
      - Falls back to the E(PROXMOX_HOST) environment variable.
    type: str
    required: true
  api_port:
    description:
      - TCP port of the Proxmox VE API.
      - Falls back to the E(PROXMOX_PORT) environment variable.
    type: int
    default: 8006
  api_user:
    description:
      - User for password authentication, in the form C(name@realm), for example V(root@pam).
      - With O(api_token_id) given as the bare token name, the user that owns the token.
      - Falls back to the E(PROXMOX_USER) environment variable.
    type: str
  api_token_id:
    description:
      - API token used to authenticate, either the full id C(user@realm!name) or, together with O(api_user), only the token name.
      - Token authentication is preferred; when a token and a password are both given, the token is used.
      - Falls back to the E(PROXMOX_TOKEN_ID) environment variable.
    type: str
  api_token_secret:
    description:
      - Secret (UUID) of O(api_token_id).
      - Falls back to the E(PROXMOX_TOKEN_SECRET) environment variable.
    type: str
  api_password:
    description:
      - Password of O(api_user), used only when no API token is given.
      - Falls back to the E(PROXMOX_PASSWORD) environment variable.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the API.
      - Set V(false) only on a lab network; prefer O(ca_path) with the cluster's own CA.
      - Falls back to the E(PROXMOX_VALIDATE_CERTS) environment variable.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the API certificate, for example a copy of C(/etc/pve/pve-root-ca.pem).
      - Passed to the HTTP client as the set of trusted CAs instead of the system bundle; ignored when O(validate_certs=false).
      - The path is read on the host that runs the module.
      - Falls back to the E(PROXMOX_CA_PATH) environment variable.
    type: path
  timeout:
    description:
      - Seconds to wait for the API to connect and answer each request.
    type: int
    default: 30
requirements:
  - proxmoxer >= 2.0
  - requests
notes:
  - All API calls are made from the host that runs the module; use C(delegate_to) to choose it (usually V(localhost)).
  - The module returns RV(api_calls), the list of API requests it made, as an audit record.
  - Errors are reported with the API's own reason (missing privilege and path for HTTP 403, the parameter map for HTTP 400,
    the message of HTTP 500), never with a secret.
"""

    ACTIONGROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/proxmox_ai.hardening.proxmox) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - proxmox_ai.hardening.proxmox
"""

    # Modules that change state.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it would have, computed from the server's real state.
    support: full
  diff_mode:
    description: Returns the state before and after the change when run with C(--diff).
    support: full
"""

    # Read-only modules.
    ATTRIBUTES_INFO = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode.
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    description: Returns details on what has changed when run with C(--diff).
    support: N/A
    details:
      - This action does not modify state.
"""
