//! Exports only the interposed `mysql_*` names from `libdrfailover-preload.so`
//! (`preload.map`); everything else, the Rust runtime included, stays local.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let map = format!("{dir}/preload.map");
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdrfailover-preload.so");
}
