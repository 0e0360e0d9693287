#!/usr/bin/env bash
# Install everything the tests need, then run them: Debian clients the tests talk to the
# server with (and Chromium for the web site), the Python packages, the linter, pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k imap -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients the tests use against the running server (and Dovecot, which reads our Maildirs).
# Installed without recommended packages, so what a client only recommends but the tests need
# is named here: libnet-ssleay-perl (swaks --tls), libsasl2-modules (mbsync's SASL PLAIN; on
# plaintext loopback it has no other way in), tmux (the terminal neomutt runs in), strace (counts
# the fsyncs a read makes: none).
APT_PACKAGES=(ca-certificates chromium curl dovecot-imapd dovecot-pop3d fetchmail getmail6 isync
  libnet-ssleay-perl libsasl2-modules neomutt strace swaks tmux)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PY" -m ruff check mailsuite tests benchmarks
"$PY" -m ruff format --check mailsuite tests benchmarks
exec "$PY" -m pytest "$@"
