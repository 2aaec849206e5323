//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
//! counter-based generator of the CUDA dropout kernel, mirrored on the host so the CPU backend
//! draws bit-identical dropout masks and tests can check the device's masks.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: four pseudo-random words for `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for r in 0..10 {
        if r > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Keep threshold of inverted dropout with probability `p`: keep iff word ≥ `p·2³²`.
pub fn dropout_threshold(p: f32) -> u32 {
    (f64::from(p) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32
}

/// The `stream` id of a dropout mask: distinct for every (optimizer step, hidden block).
pub fn dropout_stream(step: u64, block: usize) -> u64 {
    (step << 8) | (block as u64 & 0xFF)
}

/// The dropout multipliers of the `dropout_philox` kernel: element `i` keeps (`1/(1−p)`) iff
/// lane `i % 4` of `philox(counter = (i/4, stream_lo, stream_hi, 0), key = seed)` is
/// ≥ [`dropout_threshold`], else 0.
pub fn dropout_mask(len: usize, p: f32, seed: u64, stream: u64) -> Vec<f32> {
    let threshold = dropout_threshold(p);
    let scale = 1.0 / (1.0 - p);
    let key = [seed as u32, (seed >> 32) as u32];
    let mut out = Vec::with_capacity(len);
    for g in 0..len.div_ceil(4) {
        let words = philox4x32_10([g as u32, stream as u32, (stream >> 32) as u32, 0], key);
        for &w in words.iter().take(len - 4 * g) {
            out.push(if w >= threshold { scale } else { 0.0 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Random123's `kat_vectors` (philox4x32, 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn dropout_mask_rate_and_values() {
        let m = dropout_mask(100_003, 0.2, 42, dropout_stream(7, 1));
        assert_eq!(m.len(), 100_003);
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
        // Binomial sd at n = 1e5, p = 0.8 is 0.0013: 0.01 is ~8 sd.
        assert!((kept - 0.8).abs() < 0.01, "kept fraction {kept}");
        assert!(m.iter().all(|&v| v == 0.0 || v == 1.25));
        assert_ne!(m, dropout_mask(100_003, 0.2, 42, dropout_stream(8, 1)));
        assert_eq!(m, dropout_mask(100_003, 0.2, 42, dropout_stream(7, 1)));
    }
}
