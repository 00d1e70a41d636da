//! The services of `--example tracing` (`examples/shop.tidl`, package `shop`): a checkout that
//! asks pricing, which asks the inventory. The example implements them.

/// The code generated from `examples/shop.tidl`.
pub mod generated {
    tidl_runtime::include_tidl!("shop");
}

pub use generated::shop::*;
