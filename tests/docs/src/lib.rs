//! Nothing to link: this package holds the documentation test (`tests/docs.rs`) and the build
//! script that extracts the documented Rust programs for it, apart from the harness so that
//! editing a page rebuilds only this package.
