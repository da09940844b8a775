//! GF(2^8) arithmetic for the RLNC code: scalar operations from the field tables and slice
//! multiply(-add) through reed-solomon-erasure's SIMD routines (AVX2 `pshufb` split tables), so
//! RLNC coding runs at the same speed as Reed-Solomon.

use reed_solomon_erasure::Field as _;
use reed_solomon_erasure::galois_8::{self, Field};

pub fn mul(a: u8, b: u8) -> u8 {
    galois_8::mul(a, b)
}

/// `a / b`; `b` must not be zero (callers only divide by pivots).
pub fn div(a: u8, b: u8) -> u8 {
    debug_assert!(b != 0);
    galois_8::div(a, b)
}

/// `out = c * input`.
pub fn mul_slice(c: u8, input: &[u8], out: &mut [u8]) {
    Field::mul_slice(c, input, out);
}

/// `out ^= c * input`.
pub fn mul_slice_add(c: u8, input: &[u8], out: &mut [u8]) {
    Field::mul_slice_add(c, input, out);
}

/// Inverts the square matrix `rows` (row-major, `n x n`) by Gauss-Jordan elimination; `None`
/// when it is singular.
pub fn invert(mut rows: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let n = rows.len();
    let mut inverse: Vec<Vec<u8>> = (0..n)
        .map(|i| (0..n).map(|j| u8::from(i == j)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| rows[r][col] != 0)?;
        rows.swap(col, pivot);
        inverse.swap(col, pivot);
        let scale = div(1, rows[col][col]);
        for j in 0..n {
            rows[col][j] = mul(rows[col][j], scale);
            inverse[col][j] = mul(inverse[col][j], scale);
        }
        for r in 0..n {
            let factor = rows[r][col];
            if r != col && factor != 0 {
                for j in 0..n {
                    let (a, b) = (rows[col][j], inverse[col][j]);
                    rows[r][j] ^= mul(factor, a);
                    inverse[r][j] ^= mul(factor, b);
                }
            }
        }
    }
    Some(inverse)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    #[test]
    fn field_identities() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, div(1, a)), 1, "{a} * 1/{a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    #[test]
    fn slice_operations_match_scalar_ones() {
        let input: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for c in [0u8, 1, 2, 29, 255] {
            let mut out = vec![0u8; input.len()];
            mul_slice(c, &input, &mut out);
            assert!(out.iter().zip(&input).all(|(o, i)| *o == mul(c, *i)));
            let before = out.clone();
            mul_slice_add(c, &input, &mut out);
            assert!(out.iter().all(|o| *o == 0) || c == 0 && out == before);
        }
    }

    #[test]
    fn inverse_times_matrix_is_identity() {
        let matrix = vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 10]];
        let inverse = invert(matrix.clone()).expect("invertible");
        for (i, row) in matrix.iter().enumerate() {
            for j in 0..3 {
                let cell = (0..3).fold(0u8, |acc, t| acc ^ mul(row[t], inverse[t][j]));
                assert_eq!(cell, u8::from(i == j));
            }
        }
        assert_eq!(invert(vec![vec![1, 2], vec![1, 2]]), None);
    }
}
