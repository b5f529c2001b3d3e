#!/usr/bin/env bash
# Checks what would be deployed: each function's package holds a `bootstrap` built for aarch64
# (the template's arm64 / provided.al2023, glibc 2.34 at most) and fits Lambda's size limits (zip for direct upload
# 50 MiB, unzipped 250 MiB). Usage: check_package.sh DIR
#   DIR = target/lambda (make lambda-build: <bin>/bootstrap.zip) or .aws-sam/build (sam build:
#   <Function>/bootstrap).
set -euo pipefail
dir=${1:?usage: check_package.sh target/lambda | .aws-sam/build}
ZIP_LIMIT=$((50 * 1024 * 1024))
UNZIPPED_LIMIT=$((250 * 1024 * 1024))
fail() { echo "check_package: $*" >&2; exit 1; }

check_bootstrap() { # FILE LABEL
  local file=$1 label=$2 kind machine size
  [ -x "$file" ] || fail "$label: bootstrap is missing or not executable"
  kind=$(file -b "$file")
  machine=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p')
  [[ "$kind" == ELF\ 64-bit* && "$machine" == AArch64 ]] ||
    fail "$label: bootstrap is not an aarch64 ELF ($kind; machine $machine): build with --arm64"
  # provided.al2023 ships glibc 2.34: a binary needing newer symbols fails at start-up there.
  glibc=$(readelf -V "$file" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
  [ -z "$glibc" ] || [ "$(printf '%s\n' "$glibc" 2.34 | sort -V | tail -n 1)" = 2.34 ] ||
    fail "$label: bootstrap needs glibc $glibc, newer than provided.al2023's 2.34"
  size=$(stat -c %s "$file")
  [ "$size" -le $UNZIPPED_LIMIT ] || fail "$label: bootstrap is $size bytes, over Lambda's 250 MiB unzipped limit"
  echo "check_package: $label: aarch64 bootstrap, $((size / 1024 / 1024)) MiB unzipped, glibc ${glibc:-none} needed"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
found=0
for name in ngbak-backup ngbak-restore ngbak-api BackupFunction RestoreFunction ApiFunction; do
  if [ -f "$dir/$name/bootstrap.zip" ]; then
    zip=$dir/$name/bootstrap.zip
    zsize=$(stat -c %s "$zip")
    [ "$zsize" -le $ZIP_LIMIT ] || fail "$name: bootstrap.zip is $zsize bytes, over Lambda's 50 MiB direct-upload limit"
    unzip -Z1 "$zip" | grep -qx bootstrap || fail "$name: bootstrap.zip has no bootstrap at its root"
    mkdir -p "$tmp/$name" && unzip -q "$zip" -d "$tmp/$name"
    check_bootstrap "$tmp/$name/bootstrap" "$name ($((zsize / 1024 / 1024)) MiB zipped)"
    found=$((found + 1))
  elif [ -f "$dir/$name/bootstrap" ]; then
    check_bootstrap "$dir/$name/bootstrap" "$name"
    found=$((found + 1))
  fi
done
[ $found = 3 ] || fail "expected the packages of the three functions in $dir, found $found"
