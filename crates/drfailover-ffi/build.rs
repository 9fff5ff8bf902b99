//! Gives `libdrfailover.so` its SONAME (`libdrfailover.so.<major>`) and its symbol versions
//! (`drfailover.map`: every `dr_*` symbol at `DRFAILOVER_0.1`, nothing else exported).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdrfailover.so.{major}");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let map = format!("{dir}/drfailover.map");
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
}
