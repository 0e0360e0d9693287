#!/usr/bin/env bash
# Install mailsuite and start the whole suite on the demo config (config/mailsuite.yaml):
# example.test on 127.0.0.1, unprivileged ports, SQLite and Maildirs inside this checkout,
# a self-signed certificate generated on first start. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e .
export MAILSUITE_CONFIG=config/mailsuite.yaml
if ! mailsuite user show demo@example.test >/dev/null 2>&1; then
  echo "Skrzynka2026" | mailsuite user add demo@example.test --name "Demo" --password-stdin
  echo "demo account: demo@example.test, password Skrzynka2026"
fi
exec mailsuite serve
