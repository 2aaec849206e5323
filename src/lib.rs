//! flowxai: detect and explain attacks in network-flow data.
//!
//! This facade re-exports the workspace crates so that a user can depend on one package.
//! Pick single crates (`preprocess`, `shap`, …) to avoid pulling in arrow, linfa or plotters.
pub use flowdata;
pub use mlp_core;
pub use preprocess;
pub use quant;
pub use report;
pub use rf_baseline;
pub use shap;

pub mod adapters;
pub mod bundle;
