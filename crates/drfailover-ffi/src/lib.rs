//! The C ABI of drfailover: `libdrfailover.so` / `libdrfailover.a` and `include/drfailover.h`.
//!
//! This crate only translates: every policy lives in `drfailover-conn`. Conventions (also in
//! the header and docs/c-api.md, "API conventions"):
//! - every exported symbol starts with `dr_`; functions return a [`status::dr_status`] where
//!   `DR_OK == 0`; out-params are written only on success;
//! - every pointer is checked (NULL → `DR_E_INVALID_ARGUMENT`), strings must be UTF-8 and
//!   bounded in length; no panic crosses the boundary (it becomes `DR_E_PANIC`);
//! - details of the last failure on the calling thread: [`error::dr_last_error`].
#![allow(unsafe_code)] // The C boundary: raw pointers come in here and nowhere else.
#![allow(non_camel_case_types)] // C type names (`dr_client`, `dr_status`, …).
#![allow(clippy::missing_safety_doc)] // Safety contracts are written per function for C readers.

/// Gives each listed exported function the default symbol version `DRFAILOVER_0.1` (ELF
/// `.symver`; the node is defined in `drfailover.map`). A version script alone cannot do it:
/// rustc passes its own anonymous one listing every export by name, which wins over ours. The
/// directive must sit in the module (codegen unit) that defines the function. A function added
/// in a later release goes into a new node (`DRFAILOVER_0.2`), never into this one;
/// `scripts/check-symbols` fails on any export without a version.
macro_rules! symbol_version {
    ($($name:ident),+ $(,)?) => {
        #[cfg(target_os = "linux")]
        std::arch::global_asm!($(concat!(
            ".symver ", stringify!($name), ", ", stringify!($name), "@@DRFAILOVER_0.1"
        )),+);
    };
}

pub mod client;
pub mod config;
pub mod error;
pub mod events;
mod guard;
pub mod logging;
pub mod query;
pub mod status;
pub mod version;
