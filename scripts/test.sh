#!/usr/bin/env bash
# Runs storyflow's whole test suite on a fresh machine: installs what the
# tests need (headless Chromium and ChromeDriver for the status-page tests,
# epubcheck to validate EPUB exports), then runs every unit and integration
# test. The disk-full test needs root to mount a tmpfs, so it is #[ignore]d
# (a plain `cargo test` lists it as ignored); run as root with no arguments,
# this script runs it as well unless STORYFLOW_SKIP_TMPFS=1.
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

if [ $# -eq 0 ] && [ "$(id -u)" -eq 0 ] && [ -z "${STORYFLOW_SKIP_TMPFS:-}" ]; then
    cargo test --locked --test integration -- --ignored disk_full::
fi
