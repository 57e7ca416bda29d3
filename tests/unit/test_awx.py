"""AWX pieces: the EE definition, credential types, awx_configure.yml and the example project.

Nothing here needs a controller: ``ansible-builder create`` only writes a build
context (no image build, works offline), and ``ansible-playbook
--syntax-check`` resolves modules, roles and imported collection playbooks
without running anything.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX = os.path.join(ROOT, "awx")
PROJECT = os.path.join(AWX, "example_project")
CONFIGURE = os.path.join(ROOT, "playbooks", "awx_configure.yml")
COLLECTIONS = os.path.join(ROOT, "build", "collections")
EXAMPLE_PLAYBOOKS = sorted(glob.glob(os.path.join(PROJECT, "*.yml")))
JINJA_NAME = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*}}")


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _env():
    """Only this checkout's collection: a stale installed copy in ~/.ansible must not answer instead."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    return env


def _syntax_check(path, cwd=ROOT):
    proc = subprocess.run(["ansible-playbook", "--syntax-check", path], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _configure_play():
    plays = _load(CONFIGURE)
    assert len(plays) == 1
    return plays[0]


def _tasks(module):
    return [t for t in _configure_play()["tasks"] if module in t]


def test_execution_environment_create(tmp_path):
    context = tmp_path / "ee-context"
    proc = subprocess.run(["ansible-builder", "create", "-f", os.path.join(AWX, "execution-environment.yml"),
                           "-c", str(context)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = context / "Containerfile"
    assert containerfile.is_file(), os.listdir(context)
    text = containerfile.read_text(encoding="utf-8")
    definition = _load(os.path.join(AWX, "execution-environment.yml"))
    assert definition["version"] == 3
    assert f"ARG EE_BASE_IMAGE=\"{definition['images']['base_image']['name']}\"" in text
    assert "ansible-galaxy collection install" in text or "install-from-bindep" in text
    # The galaxy requirements were copied into the context unchanged and bring this collection.
    copied = context / "_build" / "requirements.yml"
    assert copied.is_file()
    galaxy = _load(str(copied))
    assert galaxy == _load(os.path.join(AWX, "requirements.yml"))
    names = {c["name"] for c in galaxy["collections"]}
    assert {"proxmox_ai.hardening", "awx.awx", "community.postgresql", "community.docker"} <= names
    # Python and system dependencies of the AWX-only pieces reached the context too.
    assert "awxkit" in (context / "_build" / "requirements.txt").read_text(encoding="utf-8")
    assert "git-core" in (context / "_build" / "bindep.txt").read_text(encoding="utf-8")


def test_awx_configure_syntax():
    _syntax_check(CONFIGURE)


def test_awx_configure_takes_no_prompts_and_reads_the_environment():
    play = _configure_play()
    assert "vars_prompt" not in play
    text = open(CONFIGURE, encoding="utf-8").read()
    for var in ("PROXMOX_TOKEN_SECRET", "PGPASSWORD", "CONTROLLER_HOST"):
        assert f"'{var}'" in text
    # Every task that hands secrets to the controller hides its arguments.
    for task in _tasks("awx.awx.credential"):
        assert task.get("no_log") is True, task["name"]


def _job_templates():
    play = _configure_play()
    templates = play["vars"]["awx_job_templates"]
    prefix = play["vars"]["awx_name_prefix"]
    (task,) = _tasks("awx.awx.job_template")
    assert task["loop"] == "{{ awx_job_templates }}"
    assert task["awx.awx.job_template"]["playbook"] == "{{ item.playbook }}"
    return prefix, templates


def test_job_templates_cover_every_operation():
    templates = _job_templates()[1]
    playbooks = {t["playbook"] for t in templates}
    expected = {"site.yml", "audit.yml", "remediate.yml", "incident_isolate.yml", "incident_investigate.yml",
                "incident_restore.yml", "incident_report.yml", "rotate_secrets.yml"}
    assert expected <= playbooks, expected - playbooks
    assert len({t["name"] for t in templates}) == len(templates)


@pytest.mark.parametrize("template", _job_templates()[1], ids=lambda t: t["name"])
def test_job_template_playbook_is_in_the_example_project(template):
    assert os.path.isfile(os.path.join(PROJECT, template["playbook"])), template


def test_schedules():
    prefix, templates = _job_templates()
    names = {f"{prefix} - {t['name']}": t for t in templates}
    play_vars = _configure_play()["vars"]
    schedules = {}
    for task in _tasks("awx.awx.schedule"):
        args = task["awx.awx.schedule"]
        target = args["unified_job_template"].replace("{{ awx_name_prefix }}", prefix)
        rrule = play_vars[args["rrule"].strip("{} ")]
        schedules[target] = rrule
    strict = names[f"{prefix} - audit (strict)"]
    assert strict.get("strict") is True and strict["playbook"] == "audit.yml"
    assert play_vars["awx_audit_strict_extra_vars"]
    assert "FREQ=WEEKLY" in schedules[f"{prefix} - audit (strict)"]
    assert names[f"{prefix} - rotate secrets"]["playbook"] == "rotate_secrets.yml"
    assert re.search(r"FREQ=DAILY;INTERVAL=90\b", schedules[f"{prefix} - rotate secrets"])
    assert set(schedules) <= set(names)


def test_example_project_requirements():
    reqs = _load(os.path.join(PROJECT, "collections", "requirements.yml"))
    assert "proxmox_ai.hardening" in {c["name"] for c in reqs["collections"]}
    inventory = _load(os.path.join(PROJECT, "inventory", "hosts.yml"))
    assert {"database", "proxy", "monitoring", "docker_hosts"} <= set(inventory["all"]["children"])
    assert _configure_play()["vars"]["awx_inventory_source_path"] == "inventory/hosts.yml"


@pytest.mark.parametrize("path", EXAMPLE_PLAYBOOKS, ids=os.path.basename)
def test_example_playbook_imports_a_collection_playbook(path):
    plays = _load(path)
    assert len(plays) == 1 and set(plays[0]) == {"name", "ansible.builtin.import_playbook"}, plays
    target = plays[0]["ansible.builtin.import_playbook"]
    match = re.fullmatch(r"proxmox_ai\.hardening\.([a-z0-9_]+)", target)
    assert match, target
    assert os.path.isfile(os.path.join(ROOT, "playbooks", match.group(1) + ".yml")), \
        f"{os.path.basename(path)} imports {target}, but playbooks/{match.group(1)}.yml does not exist"
    _syntax_check(os.path.basename(path), cwd=PROJECT)


def _pve_env_fallbacks():
    text = open(os.path.join(ROOT, "plugins", "module_utils", "_pve.py"), encoding="utf-8").read()
    return set(re.findall(r"env_fallback, \['(PROXMOX_[A-Z_]+)'\]", text)) | {"PROXMOX_HOST"}


@pytest.mark.parametrize("name", ["proxmox_token", "database"])
def test_credential_type_injectors_use_declared_inputs(name):
    ctype = _load(os.path.join(AWX, "credential_types", name + ".yml"))
    assert ctype["kind"] == "cloud" and ctype["name"] and ctype["description"]
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    assert set(ctype["inputs"]["required"]) <= set(fields)
    files = {k.split(".", 1)[1] for k in ctype["injectors"].get("file", {})}
    assert files <= set(fields)
    for value in list(ctype["injectors"]["env"].values()) + list(ctype["injectors"].get("file", {}).values()):
        for ref in JINJA_NAME.findall(value):
            if ref.startswith("tower.filename."):
                assert ref.split(".")[-1] in files, ref
            else:
                assert ref in fields, f"{name}: injector uses undeclared input {ref}"
    secret = {"proxmox_token": {"token_secret"}, "database": {"password"}}[name]
    assert {k for k, f in fields.items() if f.get("secret")} == secret


def test_proxmox_credential_injects_what_the_modules_read():
    ctype = _load(os.path.join(AWX, "credential_types", "proxmox_token.yml"))
    injected = set(ctype["injectors"]["env"])
    wanted = _pve_env_fallbacks() - {"PROXMOX_PASSWORD"}  # token auth only
    assert {"PROXMOX_HOST", "PROXMOX_USER", "PROXMOX_TOKEN_ID", "PROXMOX_TOKEN_SECRET", "PROXMOX_CA_PATH"} <= wanted
    assert wanted <= injected, wanted - injected


def test_database_credential_injects_libpq_variables():
    ctype = _load(os.path.join(AWX, "credential_types", "database.yml"))
    assert {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "PGSSLROOTCERT"} <= set(
        ctype["injectors"]["env"])
    sslmode = next(f for f in ctype["inputs"]["fields"] if f["id"] == "sslmode")
    assert "disable" not in sslmode["choices"] and "prefer" not in sslmode["choices"]
