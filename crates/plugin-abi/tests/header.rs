//! `include/mailflow_plugin.h` is what C authors compile against: it must say what
//! `src/lib.rs` says. With `BLESS=1` the header is rewritten instead, to be reviewed in the diff.

use std::path::Path;

#[test]
fn c_header_is_generated_from_the_abi() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/lib.rs"))
        .generate()
        .expect("cbindgen reads src/lib.rs")
        .write(&mut generated);
    // cbindgen writes `#define MAILFLOW_ERROR -1`, which `-MAILFLOW_ERROR` would turn into `--1`.
    let generated = String::from_utf8(generated).unwrap().replace(" -1\n", " (-1)\n").replace(" -2\n", " (-2)\n");
    let path = root.join("include/mailflow_plugin.h");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: run `BLESS=1 cargo test -p mailflow-plugin-abi --test header`",
        path.display()
    );
}
