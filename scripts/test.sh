#!/usr/bin/env bash
# Runs storyflow's whole test suite on a fresh machine: installs what the
# tests need (headless Chromium and ChromeDriver for the status-page tests,
# epubcheck to validate EPUB exports), then runs every unit and integration
# test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v epubcheck >/dev/null 2>&1 || need_apt+=(epubcheck)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} for the tests" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

cargo test --locked "$@"
