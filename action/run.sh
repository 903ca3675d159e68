#!/usr/bin/env bash
# The steps of the GitHub Action in action.yml; the tests run them as the runner would.
#   run.sh install    a venv with the locked runtime (hash-checked) and this checkout of
#                     longhorn-bi, i.e. the action's own version; its bin/ goes on GITHUB_PATH
#   run.sh validate   `validate` on INPUT_PATHS with -o github annotations, and SARIF to
#                     INPUT_SARIF_FILE when set; exits as validate does
set -euo pipefail

action_dir="$(cd "$(dirname "$0")/.." && pwd)"

fail() {
  echo "::error title=longhorn-bi action::$1"
  exit 2
}

install() {
  local venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/longhorn-bi-action"
  local python="${LONGHORN_BI_PYTHON:-python3}"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    --no-deps -r "$action_dir/requirements/runtime.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$action_dir"
  echo "$venv/bin" >>"${GITHUB_PATH:?GITHUB_PATH is not set: run this as a step of the action}"
  "$venv/bin/kubectl-longhorn_bi" --version
}

validate() {
  local -a paths options=()
  # Paths are separated by spaces or new lines, as a workflow's `with:` block writes them.
  read -r -d '' -a paths <<<"${INPUT_PATHS:-.}" || true
  [[ ${#paths[@]} -gt 0 ]] || fail "paths: give at least one file or directory"
  if [[ -n "${INPUT_LONGHORN_VERSION:-}" ]]; then
    options+=(--longhorn-version "$INPUT_LONGHORN_VERSION")
  fi
  case "${INPUT_STRICT:-false}" in
    true) options+=(--strict) ;;
    false | "") ;;
    *) fail "strict: '${INPUT_STRICT}' is not true or false" ;;
  esac
  local status=0
  kubectl-longhorn_bi validate "${options[@]}" -o github -- "${paths[@]}" || status=$?
  [[ $status -le 1 ]] || exit "$status"
  if [[ -n "${INPUT_SARIF_FILE:-}" ]]; then
    mkdir -p "$(dirname "$INPUT_SARIF_FILE")"
    kubectl-longhorn_bi validate "${options[@]}" -o sarif -- "${paths[@]}" >"$INPUT_SARIF_FILE" || true
    echo "sarif-file=$INPUT_SARIF_FILE" >>"${GITHUB_OUTPUT:-/dev/null}"
  fi
  exit "$status"
}

case "${1:-}" in
  install) install ;;
  validate) validate ;;
  *) echo "usage: $0 install|validate" >&2 && exit 2 ;;
esac
