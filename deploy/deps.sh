# shellcheck shell=bash
# Installs the Debian packages linkflow's commands need when they are missing:
# with apt-get when running as root, otherwise it says what to install.
# Usage: ensure_packages redis-server redis-cli:redis-tools [chromium ...]
# Each argument is a command, or command:package when the package that
# provides the command has another name.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    local cmd=${p%%:*} pkg=${p#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "linkflow: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
      echo "linkflow: apt-get install ${missing[*]} failed" >&2; return 1; }
    return 0
  fi
  echo "linkflow: missing ${missing[*]}. Install them first, e.g.: sudo apt-get install -y ${missing[*]}" >&2
  return 1
}
