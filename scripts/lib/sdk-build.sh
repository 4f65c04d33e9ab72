# How the libraries apps ship are built: sourced by scripts/build-android and
# scripts/build-xcframework, and read by bench/sdk-size, which measures exactly this build.
#
# sdk_cargo_args: duet-ffi's features. No built-in OpenH264 (the platform's codecs are the
#   default there; OpenH264 is loaded at run time as their fallback), no built-in TLS (the
#   Swift and Kotlin VideoCall.connect pass the platform's for wss://; about 0.38 MB), and
#   debug and trace events compiled out (about 185 kB) unless DUET_DEBUG_LOGS=1.
# sdk_rustflags REPO: rustc flags for every crate of the build. The build machine's paths
#   (the checkout, cargo's registry) become relative in the file names the library carries
#   for panic messages and log records: shorter (about 30 kB), and no builder's home
#   directory in a shipped binary.

sdk_cargo_args=(--no-default-features)
if [ "${DUET_DEBUG_LOGS:-0}" != 1 ]; then
  sdk_cargo_args+=(--features release-max-level-info)
fi

sdk_rustflags() {
  local repo="$1" src
  printf -- '--remap-path-prefix=%s/=' "$repo"
  for src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    [ -d "$src" ] && printf -- ' --remap-path-prefix=%s=' "$src"
  done
  echo
}
