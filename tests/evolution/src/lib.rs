//! Two versions of one schema (`tidl/v1.tidl` and `tidl/v2.tidl`), generated side by side, so
//! the tests can run old clients against new servers and new clients against old servers.

#![deny(missing_docs)]

/// Generated from `tidl/v1.tidl`: the schema as first deployed.
pub mod v1 {
    tidl_runtime::include_tidl!("v1");
}

/// Generated from `tidl/v2.tidl`: the next version, with safe and breaking changes.
pub mod v2 {
    tidl_runtime::include_tidl!("v2");
}
