//! The code generated from `tidl/values.tidl`, a schema with every kind of type the language
//! has, against which `tests/dynamic.rs` checks `tidl_compiler::dynamic`.

/// Generated from `tidl/values.tidl` (package `values`).
pub mod schema {
    tidl_runtime::include_tidl!("values");
}
