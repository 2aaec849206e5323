//! Parallel, allocation-free application of a per-row kernel to a matrix.

use ndarray::{ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Rows per parallel task: large enough to amortise scheduling, small enough to balance 2–16 cores.
const ROWS_PER_BLOCK: usize = 2048;

/// Applies `kernel` to every row of `x` in place, in parallel over blocks of rows.
///
/// Rows of a standard-layout matrix are handed over as slices directly; only a non-contiguous
/// view goes through one scratch row per block (never one allocation per row).
pub(crate) fn for_each_row(x: ArrayViewMut2<'_, f32>, kernel: impl Fn(&mut [f32]) + Sync) {
    let ncols = x.ncols();
    if ncols == 0 || x.nrows() == 0 {
        return;
    }
    let mut x = x;
    if let Some(all) = x.as_slice_mut() {
        all.par_chunks_mut(ROWS_PER_BLOCK * ncols)
            .for_each(|block| block.chunks_exact_mut(ncols).for_each(&kernel));
        return;
    }
    x.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK)
        .into_par_iter()
        .for_each(|mut block| {
            let mut scratch = vec![0f32; ncols];
            for mut row in block.rows_mut() {
                if let Some(s) = row.as_slice_mut() {
                    kernel(s);
                } else {
                    scratch
                        .iter_mut()
                        .zip(row.iter())
                        .for_each(|(d, s)| *d = *s);
                    kernel(&mut scratch);
                    row.iter_mut().zip(&scratch).for_each(|(d, s)| *d = *s);
                }
            }
        });
}
