#!/usr/bin/env bash
# Keeps vendor/tiny_http checkable: it must be exactly tiny_http 0.12.0 as
# published on crates.io plus vendor/tiny_http.patch, nothing else.
#
#   check [DIR]   compare DIR (default vendor/tiny_http) byte for byte with
#                 upstream + patch; names every differing file, exit 1 if any
#   apply         rebuild vendor/tiny_http from upstream + patch
#   regenerate    rewrite vendor/tiny_http.patch from vendor/tiny_http (after
#                 editing the vendored tree, PATCHES.md included)
#   self-test     show that check passes on an unchanged copy and fails on
#                 copies with one byte changed outside the patch, in a patched
#                 file, a removed file put back, a hunk PATCHES.md leaves out
#
# Upstream comes from cargo itself (crates.io, or whatever registry source
# cargo is configured with), never from a git host: the .crate file in cargo's
# cache if one matches the pinned checksum, else a throwaway project fetches
# it. The .crate is verified against CRATE_SHA256 (the checksum crates.io's
# index gives, the one a Cargo.lock records) and unpacked here, so neither a
# stale nor an edited ~/.cargo/registry/src copy can stand in for upstream.
#
# The patch is a git-style diff (it shows deletions and new files as such) and
# is applied with `git apply` in a scratch repository whose attributes turn off
# every line-ending conversion, so it reproduces bytes exactly.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly CRATE=tiny_http
readonly VERSION=0.12.0
readonly CRATE_SHA256=389915df6413a2e74fb181895f933386023c71110878cd0825588928e64cdc82
readonly VENDORED=vendor/tiny_http
readonly PATCH=vendor/tiny_http.patch
ROOT=$(pwd)
readonly ROOT

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/vendor-tiny-http.XXXXXX")
readonly SCRATCH
trap 'rm -rf "$SCRATCH"' EXIT

die() {
    echo "vendor-tiny-http: $*" >&2
    exit 2
}

# git with no user or system setting that could change a diff or its
# application (prefixes, colours, whitespace fixing, ignore files).
scratch_git() {
    GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
        git -c core.autocrlf=false -c core.excludesFile=/dev/null "$@"
}

# A repository in DIR that stores bytes as they are.
init_scratch_repo() {
    scratch_git -C "$1" init -q
    echo '* -text' >"$1/.git/info/attributes"
}

# Prints the path of a cached .crate whose checksum is the pinned one.
find_cached_crate() {
    local home=$1 candidate
    for candidate in "$home"/registry/cache/*/"$CRATE-$VERSION.crate"; do
        [ -f "$candidate" ] || continue
        if [ "$(sha256sum "$candidate" | cut -d' ' -f1)" = "$CRATE_SHA256" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Has cargo download the crate through a throwaway project with CARGO_HOME
# as given.
cargo_fetch_crate() {
    local home=$1 project=$SCRATCH/fetch
    mkdir -p "$project/src"
    cat >"$project/Cargo.toml" <<EOF
[package]
name = "vendor-tiny-http-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$CRATE = "=$VERSION"

# Its own workspace, whatever directory the scratch space is in.
[workspace]
EOF
    echo 'fn main() {}' >"$project/src/main.rs"
    CARGO_HOME=$home cargo fetch --quiet --manifest-path "$project/Cargo.toml" >&2
}

# Prints the path of the verified upstream .crate, fetching it if needed.
upstream_crate() {
    local home=${CARGO_HOME:-$HOME/.cargo} crate
    if crate=$(find_cached_crate "$home"); then
        echo "$crate"
        return 0
    fi
    cargo_fetch_crate "$home"
    if crate=$(find_cached_crate "$home"); then
        echo "$crate"
        return 0
    fi
    # A configured source that keeps no .crate files (a `directory` source
    # replacing crates.io, say) leaves nothing to verify: fetch into a
    # private CARGO_HOME, which reaches crates.io directly.
    cargo_fetch_crate "$SCRATCH/cargo-home"
    crate=$(find_cached_crate "$SCRATCH/cargo-home") ||
        die "no $CRATE-$VERSION.crate with sha256 $CRATE_SHA256 after cargo fetch"
    echo "$crate"
}

# Unpacks the published crate into DIR (created; DIR must not exist).
unpack_upstream() {
    local dest=$1 crate
    crate=$(upstream_crate)
    mkdir -p "$SCRATCH/unpack"
    tar -xzf "$crate" -C "$SCRATCH/unpack"
    mv "$SCRATCH/unpack/$CRATE-$VERSION" "$dest"
    rmdir "$SCRATCH/unpack"
}

# Builds upstream + patch into DIR, once per run of this script.
build_expected() {
    local dest=$1
    [ -f "$PATCH" ] || die "$PATCH is missing"
    unpack_upstream "$dest"
    init_scratch_repo "$dest"
    scratch_git -C "$dest" apply --whitespace=nowarn "$ROOT/$PATCH" ||
        die "$PATCH does not apply to $CRATE $VERSION as published"
    rm -rf "$dest/.git"
}

EXPECTED=""
expected_tree() {
    if [ -z "$EXPECTED" ]; then
        EXPECTED=$SCRATCH/expected
        build_expected "$EXPECTED"
    fi
}

# Files (and symlinks) under DIR, relative to it, sorted.
list_files() {
    (cd "$1" && find . \( -type f -o -type l \) -print | sed 's|^\./||' | LC_ALL=C sort)
}

executable() {
    if [ -x "$1" ]; then echo yes; else echo no; fi
}

# Compares a tree with upstream + patch; prints each file that differs in
# content or executable bit, is missing or is extra, and returns 1 if any.
compare_with_expected() {
    local tree=$1 file differing=0
    expected_tree
    list_files "$EXPECTED" >"$SCRATCH/expected.list"
    list_files "$tree" >"$SCRATCH/tree.list"
    while IFS= read -r file; do
        echo "  missing: $file" >&2
        differing=1
    done < <(LC_ALL=C comm -23 "$SCRATCH/expected.list" "$SCRATCH/tree.list")
    while IFS= read -r file; do
        echo "  not in upstream + patch: $file" >&2
        differing=1
    done < <(LC_ALL=C comm -13 "$SCRATCH/expected.list" "$SCRATCH/tree.list")
    while IFS= read -r file; do
        if ! cmp -s "$EXPECTED/$file" "$tree/$file"; then
            echo "  differs: $file" >&2
            differing=1
        elif [ "$(executable "$EXPECTED/$file")" != "$(executable "$tree/$file")" ]; then
            echo "  executable bit differs: $file" >&2
            differing=1
        fi
    done < <(LC_ALL=C comm -12 "$SCRATCH/expected.list" "$SCRATCH/tree.list")
    return "$differing"
}

# Checks that NOTES (PATCHES.md) lists what PATCH holds: every file in
# backticks, and for each changed file a "### `path`" section naming each of
# its hunks as `@@ -N` (N: the upstream line in the hunk's header), with no
# hunk named that the patch does not have. Prints each gap, returns 1 if any.
check_notes_cover_patch() {
    local notes=$1
    [ -f "$notes" ] || {
        echo "  missing: PATCHES.md" >&2
        return 1
    }
    awk '
        FNR == NR {
            if ($0 ~ /^diff --git /) { file = substr($3, 3); files[file] = 1; changed[file] = 1; next }
            if ($0 ~ /^(new|deleted) file mode/) { delete changed[file]; next }
            if ($0 ~ /^@@ /) { split($2, range, ","); hunks[file, range[1]] = 1 }
            next
        }
        /^### `[^`]*`/ { section = $0; sub(/^### `/, "", section); sub(/`.*/, "", section); headed[section] = 1 }
        {
            line = $0
            while (match(line, /`[^`]+`/)) {
                token = substr(line, RSTART + 1, RLENGTH - 2)
                mentioned[token] = 1
                if (token ~ /^@@ -[0-9]+$/) {
                    start = substr(token, 4)
                    named[section, start] = 1
                    if (!((section, start) in hunks)) { print "  PATCHES.md names a hunk the patch does not have: " section " @@ " start; bad = 1 }
                }
                line = substr(line, RSTART + RLENGTH)
            }
        }
        END {
            for (file in files) if (!(file in mentioned)) { print "  PATCHES.md does not mention " file; bad = 1 }
            for (file in changed) if (!(file in headed)) { print "  PATCHES.md has no section for " file; bad = 1 }
            for (key in hunks) {
                split(key, part, SUBSEP)
                if ((part[1] in changed) && !(key in named)) { print "  PATCHES.md does not explain " part[1] " @@ " part[2]; bad = 1 }
            }
            exit bad
        }
    ' "$PATCH" "$notes" >&2
}

cmd_check() {
    local tree=${1:-$VENDORED}
    [ -d "$tree" ] || die "$tree is not a directory"
    tree=$(cd "$tree" && pwd)
    local notes_ok=0
    check_notes_cover_patch "$tree/PATCHES.md" || notes_ok=1
    if compare_with_expected "$tree" && [ "$notes_ok" -eq 0 ]; then
        echo "$tree is $CRATE $VERSION from crates.io + $PATCH"
    else
        echo "$tree differs from $CRATE $VERSION + $PATCH or PATCHES.md misses part of the patch (listed above);" \
            "run scripts/vendor-tiny-http.sh regenerate after an intended change" >&2
        return 1
    fi
}

cmd_apply() {
    expected_tree
    rm -rf "$VENDORED"
    cp -R "$EXPECTED" "$VENDORED"
    echo "rebuilt $VENDORED from $CRATE $VERSION + $PATCH"
}

# The patch from a tree with both sides staged, so deletions and new files
# come out as such; settings fixed so the same trees always give the same
# patch text.
cmd_regenerate() {
    local repo=$SCRATCH/diff from to
    unpack_upstream "$repo"
    init_scratch_repo "$repo"
    scratch_git -C "$repo" add -A -f .
    from=$(scratch_git -C "$repo" write-tree)
    find "$repo" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
    cp -R "$VENDORED"/. "$repo"/
    scratch_git -C "$repo" add -A -f .
    to=$(scratch_git -C "$repo" write-tree)
    scratch_git -C "$repo" diff --no-color --no-ext-diff --no-renames \
        --diff-algorithm=myers --src-prefix=a/ --dst-prefix=b/ \
        "$from" "$to" >"$PATCH"
    echo "wrote $PATCH ($(grep -c '^diff --git' "$PATCH") files)"
    cmd_check
}

# Overwrites the byte at OFFSET of FILE with a different one.
flip_byte() {
    local file=$1 offset=$2 old new
    old=$(dd if="$file" bs=1 skip="$offset" count=1 2>/dev/null)
    new=x
    [ "$old" != x ] || new=y
    printf '%s' "$new" | dd of="$file" bs=1 seek="$offset" conv=notrunc 2>/dev/null
}

# Runs check on COPY and requires it to fail naming FILE.
expect_check_fails_naming() {
    local copy=$1 file=$2 output
    if output=$(cmd_check "$copy" 2>&1); then
        die "self-test: check passed on a copy with $file changed"
    fi
    grep -q "$file" <<<"$output" ||
        die "self-test: check failed but did not name $file: $output"
    printf '  %s\n' "$output"
}

cmd_self_test() {
    local copy=$SCRATCH/tiny_http untouched=src/common.rs patched=src/lib.rs
    # The one-byte change must be outside the patch: in a file it never names.
    if grep -q "^diff --git a/$untouched " "$PATCH"; then
        die "self-test: $untouched is in the patch; pick a file it leaves alone"
    fi

    cp -R "$VENDORED" "$copy"
    echo "self-test: unchanged copy"
    cmd_check "$copy" >/dev/null || die "self-test: check failed on an unchanged copy"
    echo "  passes"

    echo "self-test: one byte of $untouched changed (a file the patch leaves alone)"
    flip_byte "$copy/$untouched" 200
    expect_check_fails_naming "$copy" "$untouched"

    echo "self-test: one byte of $patched changed (a file the patch edits)"
    rm -rf "$copy" && cp -R "$VENDORED" "$copy"
    flip_byte "$copy/$patched" 200
    expect_check_fails_naming "$copy" "$patched"

    echo "self-test: a file upstream has and the patch removes put back"
    rm -rf "$copy" && cp -R "$VENDORED" "$copy"
    echo '# brought back' >"$copy/CHANGELOG.md"
    expect_check_fails_naming "$copy" CHANGELOG.md

    echo "self-test: PATCHES.md without the entry for a hunk of $patched"
    rm -rf "$copy" && cp -R "$VENDORED" "$copy"
    local hunk
    hunk=$(awk -v f="a/$patched" '$1 == "diff" { on = ($3 == f) } on && /^@@ / { split($2, r, ","); print r[1]; exit }' "$PATCH")
    grep -v "\`@@ $hunk\`" "$VENDORED/PATCHES.md" >"$copy/PATCHES.md"
    expect_check_fails_naming "$copy" "$patched @@ $hunk"

    echo "self-test: ok"
}

case "${1:-}" in
check) shift && cmd_check "$@" ;;
apply) cmd_apply ;;
regenerate) cmd_regenerate ;;
self-test) cmd_self_test ;;
*)
    echo "usage: $0 check [DIR] | apply | regenerate | self-test" >&2
    exit 2
    ;;
esac
