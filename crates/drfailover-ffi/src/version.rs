//! Library version, as macros and as a function.

/// Major version (also the SONAME suffix: `libdrfailover.so.<major>`).
pub const DR_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const DR_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const DR_VERSION_PATCH: u32 = 0;

/// The library version as `"major.minor.patch"`. Static string; never NULL; thread-safe.
#[no_mangle]
pub extern "C" fn dr_version() -> *const std::os::raw::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_match_cargo_toml() {
        assert_eq!(
            DR_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            DR_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            DR_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: dr_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(dr_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

symbol_version!(dr_version);
