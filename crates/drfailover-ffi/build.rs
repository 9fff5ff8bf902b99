//! Gives `libdrfailover.so` its SONAME (`libdrfailover.so.<major>`).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdrfailover.so.{major}");
}
