#!/usr/bin/env bash
# Install the test dependencies from scratch and run every check: ruff, mypy (strict), pytest.
source "$(dirname "$0")/_venv.sh" test,local,discovery,exports,ray
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q "$@"
