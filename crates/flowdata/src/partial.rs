//! Writing an output file all or nothing.
use std::path::{Path, PathBuf};

use crate::error::{FlowDataError, Result};

/// A temporary file beside an output (same folder, so the final rename stays on one file
/// system), removed on drop unless [`PartialFile::commit`] renamed it over the output: a failed
/// or interrupted write never leaves a half-written file at the output path, and an earlier
/// output there survives it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("flows.csv");
/// let partial = flowdata::PartialFile::beside(&out);
/// std::fs::write(partial.path(), "a,b\n").unwrap();
/// assert!(!out.exists());
/// partial.commit(&out).unwrap();
/// assert_eq!(std::fs::read_to_string(&out).unwrap(), "a,b\n");
/// ```
#[derive(Debug)]
pub struct PartialFile(PathBuf);

impl PartialFile {
    /// The temporary path for `output`: `.<name>.partial-<pid>` in the same folder.
    pub fn beside(output: &Path) -> Self {
        let name = output
            .file_name()
            .map_or_else(|| std::ffi::OsString::from("output"), |n| n.to_os_string());
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(name);
        tmp.push(format!(".partial-{}", std::process::id()));
        PartialFile(output.with_file_name(tmp))
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Renames the written file over `output`.
    pub fn commit(mut self, output: &Path) -> Result<()> {
        std::fs::rename(&self.0, output).map_err(|error| FlowDataError::Io {
            path: output.to_path_buf(),
            error,
        })?;
        self.0 = PathBuf::new(); // renamed: nothing left to remove
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
