#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_migrate
short_description: Apply versioned SQL migrations to a PostgreSQL database, once each
version_added: 0.1.0
description:
  - Applies the files C(NNN_name.sql) of a directory on the managed host in
    version order, each in one transaction together with its row in the table
    C(schema_migrations), under an advisory lock so that concurrent runs never
    interleave.
  - A file already recorded is skipped; a recorded file whose content changed
    (sha256) makes the module fail, because released migrations must not be
    edited.
  - Why not M(community.postgresql.postgresql_script) - it runs a script every
    time and always reports a change, and it cannot record the script in the
    same transaction; this module reports C(changed) only when a migration was
    applied and its check mode lists exactly the pending ones.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
extends_documentation_fragment:
  - proxmox_ai.hardening.postgres
attributes:
  check_mode:
    support: full
    description: Lists the migrations that would be applied; creates nothing, not even C(schema_migrations).
  diff_mode:
    support: full
    description: The schema version before and after.
options:
  path:
    description:
      - Directory on the managed host holding the C(NNN_name.sql) files.
    type: path
    required: true
  target_version:
    description:
      - Apply migrations up to this version only. Default is all of them.
    type: int
notes:
  - Run it as the role that should own the objects the migrations create.
seealso:
  - module: community.postgresql.postgresql_script
'''

EXAMPLES = r'''
- name: Bring the monitoring schema up to date
  proxmox_ai.hardening.pg_migrate:
    path: /usr/local/share/proxmox-ai/migrations
    login_db: proxmox_ai
  become: true
  become_user: postgres
'''

RETURN = r'''
applied:
  description: Migrations applied by this run (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [001_initial_schema]
version_before:
  description: Highest applied version before the run (0 = none).
  returned: always
  type: int
  sample: 0
version_after:
  description: Highest applied version after the run (in check mode, would be).
  returned: always
  type: int
  sample: 1
unknown:
  description: Versions recorded in the database without a file here (the database is newer than these files).
  returned: always
  type: list
  elements: int
  sample: []
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pg import (
    pg_common_argument_spec,
    pg_connect,
)
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import (
    MigrationError,
    apply_migrations,
)


def main():
    argument_spec = pg_common_argument_spec()
    argument_spec.update(
        path=dict(type='path', required=True),
        target_version=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    conn = pg_connect(module)
    try:
        outcome = apply_migrations(conn, module.params['path'], check=module.check_mode,
                                   target_version=module.params['target_version'])
    except MigrationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    finally:
        conn.close()
    if outcome['unknown']:
        module.warn('the database has migrations %s that are not in %s: it is newer than these files'
                    % (outcome['unknown'], module.params['path']))
    result = dict(
        changed=bool(outcome['applied']),
        applied=outcome['applied'],
        version_before=outcome['version_before'],
        version_after=outcome['version_after'],
        unknown=outcome['unknown'],
    )
    if module._diff and outcome['applied']:
        result['diff'] = dict(before='schema version %d\n' % outcome['version_before'],
                              after='schema version %d\n' % outcome['version_after'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
