//! Reference min-max scaling (see the module docs of `crate::min_max`), in `f64`.

use crate::min_max::{self, Axis, GroupScale, MinMaxParams};
use crate::{Matrix, Result};

pub fn min_max(data: &Matrix, p: &MinMaxParams) -> Result<Matrix> {
    min_max::validate(data, p)?;
    let (rows, cols) = (data.rows(), data.cols());
    let group = |i: usize| match p.axis {
        Axis::Columns => i % cols,
        Axis::Rows => i / cols,
        Axis::All => 0,
    };
    let groups = match p.axis {
        Axis::Columns => cols,
        Axis::Rows => rows,
        Axis::All => 1,
    };
    let mut lo = vec![f64::INFINITY; groups];
    let mut hi = vec![f64::NEG_INFINITY; groups];
    for (i, &v) in data.data().iter().enumerate() {
        if !v.is_nan() {
            let g = group(i);
            lo[g] = lo[g].min(v as f64);
            hi[g] = hi[g].max(v as f64);
        }
    }
    let maps: Vec<GroupScale> = (0..groups)
        .map(|g| GroupScale::new(lo[g], hi[g], p))
        .collect();
    let out = data
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| maps[group(i)].apply(v as f64) as f32)
        .collect();
    Matrix::new(rows, cols, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_rows_and_all() {
        let m = Matrix::new(2, 3, vec![1.0, 5.0, f32::NAN, 3.0, 5.0, f32::NAN]).unwrap();
        let mut p = MinMaxParams {
            min: 0.0,
            max: 1.0,
            axis: Axis::Columns,
        };
        let out = min_max(&m, &p).unwrap();
        assert_eq!(&out.data()[..2], &[0.0, 0.0]);
        assert_eq!(&out.data()[3..5], &[1.0, 0.0]);
        assert!(out.data()[2].is_nan() && out.data()[5].is_nan());
        p.axis = Axis::Rows;
        let out = min_max(&m, &p).unwrap();
        assert_eq!(&out.data()[..2], &[0.0, 1.0]);
        assert_eq!(&out.data()[3..5], &[0.0, 1.0]);
        p.axis = Axis::All;
        let out = min_max(&m, &p).unwrap();
        assert_eq!(&out.data()[3..5], &[0.5, 1.0]);
        let inf = Matrix::new(1, 2, vec![1.0, f32::NEG_INFINITY]).unwrap();
        assert!(min_max(&inf, &p).is_err());
    }
}
