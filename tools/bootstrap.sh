#!/usr/bin/env bash
# Installs whatever is missing for this checkout, idempotently: the Python virtualenv
# (the project with its dev tools), the npm toolchain (solc-js, anvil, OpenZeppelin), and
# the links that let brownie find the compiler and the local chain binary.
# Safe to run again and again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLCHAIN=$ROOT/.venv/toolchain   # links for brownie: solc-v<version>, anvil
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }

# --- Python ----------------------------------------------------------------------------
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
stamp_py=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp_py" ]; then
  say "Installing the Python environment (.venv) - the first time takes a few minutes"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp_py"
fi

# --- API fuzzer -------------------------------------------------------------------------
# schemathesis needs newer hypothesis/starlette than brownie's exact pins allow, so it
# lives in a virtualenv of its own and the tests run it as a program against a live server.
FUZZ=$ROOT/.venv/toolchain/fuzz
stamp_fuzz="$FUZZ/.installed-$(cat tools/fuzz-requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp_fuzz" ]; then
  say "Installing the API fuzzer (schemathesis) in its own environment"
  [ -x "$FUZZ/bin/python" ] || "$PYTHON" -m venv "$FUZZ"
  "$FUZZ/bin/python" -m pip install --quiet --upgrade pip
  "$FUZZ/bin/python" -m pip install --quiet -r tools/fuzz-requirements.txt
  rm -f "$FUZZ"/.installed-*
  touch "$stamp_fuzz"
fi

# --- lint and type gates ---------------------------------------------------------------
# ruff and mypy in an environment of their own: mypy's mypy-extensions is newer than the
# one brownie pins. mypy reads the project's packages through --python-executable .venv/bin/python.
LINT=$ROOT/.venv/toolchain/lint
stamp_lint="$LINT/.installed-$(cat tools/lint-requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp_lint" ]; then
  say "Installing the lint and type checkers (ruff, mypy) in their own environment"
  [ -x "$LINT/bin/python" ] || "$PYTHON" -m venv "$LINT"
  "$LINT/bin/python" -m pip install --quiet --upgrade pip
  "$LINT/bin/python" -m pip install --quiet -r tools/lint-requirements.txt
  rm -f "$LINT"/.installed-*
  touch "$stamp_lint"
fi

# --- npm toolchain ---------------------------------------------------------------------
if ! command -v npm >/dev/null; then
  echo "Node.js 18+ with npm is needed for the Solidity compiler and the local chain (apt-get install nodejs npm)." >&2
  exit 1
fi
stamp_npm="node_modules/.installed-$(cat package-lock.json | sha256sum | cut -c1-16)"
if [ ! -f "$stamp_npm" ]; then
  say "Installing the Solidity compiler, anvil, OpenZeppelin, axe-core and the world atlas (npm install)"
  # anvil's package ships its native binary as an optional dependency; its postinstall
  # script is not needed, so npm's notice about skipping it is harmless.
  # `npm install`, not `npm ci`: the registry serves only some platforms' anvil binaries,
  # so the lock file lists only this one and `npm ci` refuses it as out of sync.
  # Versions are exact in package.json and the lock file.
  npm install --no-audit --no-fund --loglevel=error
  rm -f node_modules/.installed-*
  touch "$stamp_npm"
fi

# --- links: compiler for py-solc-x, anvil binary for brownie ---------------------------
solc_version=$(node -p "require('./node_modules/solc/package.json').version")
mkdir -p "$TOOLCHAIN/solcx" "$TOOLCHAIN/bin"
ln -sfn "$ROOT/tools/solc.js" "$TOOLCHAIN/solcx/solc-v$solc_version"
# brownie only ever finds anvil as the bare word `anvil` on PATH; link the native binary
# (not npm's node wrapper, whose death would orphan the chain).
anvil_bin=$(ls -d "$ROOT"/node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n1 || true)
if [ -z "$anvil_bin" ]; then
  echo "The native anvil binary for this platform is missing from node_modules/@foundry-rs (run 'npm install')." >&2
  exit 1
fi
ln -sfn "$anvil_bin" "$TOOLCHAIN/bin/anvil"
# Also offer the compiler where py-solc-x looks by default, so a bare `brownie compile`
# works outside make; an existing native compiler of that version is left alone.
if [ ! -e "$HOME/.solcx/solc-v$solc_version" ] || [ -L "$HOME/.solcx/solc-v$solc_version" ]; then
  mkdir -p "$HOME/.solcx" && ln -sfn "$ROOT/tools/solc.js" "$HOME/.solcx/solc-v$solc_version"
fi

# A brownie network for the persisted local chain of `make run`, so that
# `brownie run scripts/... --network provenance-local` attaches to it.
if ! grep -qs "provenance-local" "$HOME/.brownie/network-config.yaml"; then
  PATH="$TOOLCHAIN/bin:$PATH" .venv/bin/brownie networks add development provenance-local \
    cmd=anvil host=http://127.0.0.1 port=8546 >/dev/null
fi
