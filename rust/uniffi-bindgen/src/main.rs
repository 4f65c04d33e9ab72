//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libduet_ffi.so ...`
//! (see `scripts/generate-bindings`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
