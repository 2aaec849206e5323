//! Every available SIMD path equals the scalar reference bit for bit.
use quant::kernels::{gemm_reference, gemm_u8i8, KernelKind, PackedWeights, ACT_MAX};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_case(rng: &mut ChaCha8Rng, m: usize, k: usize, n: usize) -> (Vec<u8>, Vec<i8>) {
    // Extremes included: 127 · (−128) pairs are where a saturating i16 path would break.
    let a = (0..m * k)
        .map(|_| {
            if rng.gen_bool(0.1) {
                ACT_MAX
            } else {
                rng.gen_range(0..=ACT_MAX)
            }
        })
        .collect();
    let w = (0..n * k)
        .map(|_| {
            if rng.gen_bool(0.1) {
                -128
            } else {
                rng.gen_range(-128i16..=127) as i8
            }
        })
        .collect();
    (a, w)
}

#[test]
fn all_paths_equal_reference_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let kinds = KernelKind::available();
    assert!(kinds.contains(&KernelKind::Scalar));
    eprintln!("available kernels: {kinds:?}");
    let mut shapes = vec![
        (1, 1, 1),
        (1, 76, 128),
        (5, 128, 256),
        (9, 3, 17),
        (4, 64, 64),
        (13, 257, 33),
    ];
    for _ in 0..40 {
        shapes.push((
            rng.gen_range(1..20),
            rng.gen_range(1..300),
            rng.gen_range(1..90),
        ));
    }
    for &(m, k, n) in &shapes {
        let (a, w) = random_case(&mut rng, m, k, n);
        let expected = gemm_reference(&a, m, k, &w, n);
        let packed = PackedWeights::pack(&w, n, k).unwrap();
        assert_eq!(packed.unpack(), w);
        for &kind in &kinds {
            let got = gemm_u8i8(kind, &a, m, k, &packed).unwrap();
            assert_eq!(got, expected, "{kind:?} differs on m={m} k={k} n={n}");
        }
    }
}

#[test]
fn all_extremes_do_not_saturate() {
    // Every pair at 127 · −128: the i16 intermediate of maddubs sits at −32 512.
    let (m, k, n) = (3, 131, 19);
    let a = vec![ACT_MAX; m * k];
    let w = vec![-128i8; n * k];
    let packed = PackedWeights::pack(&w, n, k).unwrap();
    for kind in KernelKind::available() {
        let got = gemm_u8i8(kind, &a, m, k, &packed).unwrap();
        assert!(
            got.iter().all(|&v| v == -(127 * 128 * k as i32)),
            "{kind:?}"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let packed = PackedWeights::pack(&[1, 2, 3, 4], 2, 2).unwrap();
    assert!(gemm_u8i8(KernelKind::Scalar, &[128, 0], 1, 2, &packed).is_err());
    assert!(gemm_u8i8(KernelKind::Scalar, &[1, 0, 0], 1, 3, &packed).is_err());
    assert!(PackedWeights::pack(&[1, 2, 3], 2, 2).is_err());
}
