//! flowxai: detect and explain attacks in network-flow data.
//!
//! This facade re-exports the workspace crates so that a user can depend on one package.
//! Pick single crates (`preprocess`, `shap`, …) to avoid pulling in arrow, linfa or plotters.
pub use flowdata;
pub use flowmeter;
pub use mlp_core;
pub use preprocess;
pub use quant;
pub use report;
pub use rf_baseline;
pub use shap;

pub mod adapters;
pub mod bundle;

/// `e` and its causes joined by ": ", each message once: many errors repeat their cause in
/// their own message (`{path}: {source}`), which `{:#}` or a "Caused by" list would print
/// twice. The command-line programs print their errors with this.
///
/// ```
/// #[derive(Debug)]
/// struct LoadError(std::io::Error); // its message repeats its cause
/// impl std::fmt::Display for LoadError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "model.json: {}", self.0)
///     }
/// }
/// impl std::error::Error for LoadError {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let e = LoadError(std::io::Error::new(std::io::ErrorKind::NotFound, "not found"));
/// assert_eq!(flowxai::error_chain(&e), "model.json: not found");
/// ```
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.ends_with(&part) && !text.contains(&format!("{part}: ")) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}
