//! The code generated from `tidl/`, compiled under `#![deny(missing_docs)]` (and the
//! workspace's lints, and clippy with warnings denied).

#![deny(missing_docs)]

/// Generated from `tidl/shop.tidl` and everything it imports.
pub mod shop_schema {
    tidl_runtime::include_tidl!("shop");
}

/// Generated from `tidl/locator.tidl`, clients only.
pub mod locator_schema {
    tidl_runtime::include_tidl!("locator");
}
