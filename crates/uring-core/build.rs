fn main() {
    // Node's symbols are resolved when the addon is loaded; only the binding build needs the link setup.
    if std::env::var_os("CARGO_FEATURE_NAPI").is_some() {
        napi_build::setup();
    }
}
