#!/bin/sh
# Generate configure and the Makefile.in files. Re-run after editing
# configure.ac or any Makefile.am (contrib/setup.sh does this for you).
set -e
cd "$(dirname "$0")"
# config/ holds the aux scripts and m4/ the libtool macros; both are generated.
mkdir -p config m4
exec autoreconf -fi "$@"
