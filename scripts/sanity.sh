#!/usr/bin/env bash
# Runs `ansible-test sanity` offline. ansible-test needs a real path ending in
# ansible_collections/<namespace>/<name>/, so the tracked and new (not ignored)
# files are copied to build/sanity/... first. Extra arguments go to ansible-test,
# e.g. scripts/sanity.sh --test pep8 --test validate-modules
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

command -v shellcheck >/dev/null || { echo "sanity: shellcheck missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }

pip_versions="$(python - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(" ".join(sorted(set(re.findall(r"pip='([0-9.]+)'", src)))))
PY
)"
mkdir -p "${HOME}/.ansible/test/cache"
for v in $pip_versions; do
  cp "${PAI_ROOT}/scripts/ansible-test/get_pip.py" "${HOME}/.ansible/test/cache/get_pip_${v//./_}.py"
done

# Outside the checkout: inside it, ansible-test would see the checkout's git
# repository (where build/ is ignored) and find no files to test.
work="${PAI_SANITY_DIR:-/var/tmp/pai-sanity-$(echo "$PAI_ROOT" | sha256sum | cut -c1-12)}"
dest="${work}/ansible_collections/proxmox_ai/hardening"
mkdir -p "$dest"
cd "$PAI_ROOT"
# (files deleted in the work tree but still in the index are left out)
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
  | rsync -a --delete --from0 --files-from=- ./ "$dest/"
# rsync --files-from does not delete stale files: prune what is no longer listed.
( cd "$dest" && find . -type f ! -path './tests/output/*' -printf '%P\n' ) | sort > "${work}/.have"
git ls-files --cached --others --exclude-standard | sort > "${work}/.want"
comm -23 "${work}/.have" "${work}/.want" | while read -r stale; do rm -f "${dest}/${stale}"; done
cd "$dest"
exec ansible-test sanity --venv --python 3.11 --color no "$@"
