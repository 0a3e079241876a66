# Sourced by scripts/demo and scripts/test: make .venv once, reinstall when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer not found (hint: install python3.11 or set PYTHON=/path/to/python)" >&2
  return 1
}
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  py=$(pick_python)
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv || {
      echo "error: could not create .venv (hint: on Debian/Ubuntu run: apt-get install python3-venv)" >&2
      exit 1
    }
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
