#!/usr/bin/env bash
# Release step for offline builds (debian/, distributions without network at build time):
# copies the library's crates into vendor/ and points cargo at them (.cargo/config.toml).
# Both are ignored by git; a release tarball carries them. Needs the crates in cargo's
# cache or crates.io once; afterwards `make CARGO_FLAGS="--offline --locked"` builds
# with no network.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cargo
cargo vendor --locked --versioned-dirs vendor > .cargo/config.toml
echo "vendored $(ls vendor | wc -l) crates ($(du -sh vendor | cut -f1)) into vendor/; cargo reads them via .cargo/config.toml"
