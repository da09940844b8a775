use crate::{KernelError, Result};

/// A dense row-major array: `rows x cols` values, row `r` at `data[r*cols .. (r+1)*cols]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T = f32> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Copy> Matrix<T> {
    /// Checks that `data` holds exactly `rows * cols` values.
    pub fn new(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        let expected = rows
            .checked_mul(cols)
            .ok_or_else(|| KernelError::input(format!("shape {rows}x{cols} overflows")))?;
        if data.len() != expected {
            return Err(KernelError::input(format!(
                "shape {rows}x{cols} needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    pub fn filled(rows: usize, cols: usize, value: T) -> Self {
        Self {
            rows,
            cols,
            data: vec![value; rows * cols],
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &[T] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<T> {
        self.data
    }
    /// Row `r`; panics if `r >= rows` (callers index within the shape they checked).
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
    pub fn get(&self, r: usize, c: usize) -> Option<T> {
        if r < self.rows && c < self.cols {
            self.data.get(r * self.cols + c).copied()
        } else {
            None
        }
    }
    /// The same values seen as another shape with the same element count.
    pub fn reshape(self, rows: usize, cols: usize) -> Result<Self> {
        Self::new(rows, cols, self.data)
    }
    pub fn transpose(&self) -> Self {
        let mut out = Vec::with_capacity(self.data.len());
        for c in 0..self.cols {
            for r in 0..self.rows {
                out.push(self.data[r * self.cols + c]);
            }
        }
        Self {
            rows: self.cols,
            cols: self.rows,
            data: out,
        }
    }
}

impl Matrix<f32> {
    /// The position of the first NaN or infinite value, if any.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        let i = self.data.iter().position(|v| !v.is_finite())?;
        Some((i / self.cols.max(1), i % self.cols.max(1)))
    }

    /// Fails with [`KernelError::InvalidInput`] naming the first non-finite value of `what`.
    pub fn require_finite(&self, what: &str) -> Result<()> {
        match self.first_non_finite() {
            Some((r, c)) => Err(KernelError::input(format!(
                "{what} has a non-finite value at row {r}, column {c}"
            ))),
            None => Ok(()),
        }
    }
}

/// A kernel input or output array: values, or integer results (indices, labels).
#[derive(Debug, Clone, PartialEq)]
pub enum Table {
    F32(Matrix<f32>),
    U32(Matrix<u32>),
}

impl Table {
    pub fn rows(&self) -> usize {
        match self {
            Table::F32(m) => m.rows(),
            Table::U32(m) => m.rows(),
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Table::F32(m) => m.cols(),
            Table::U32(m) => m.cols(),
        }
    }
    /// The values as `f32` (integers convert exactly below 2^24).
    pub fn to_f32(&self) -> Matrix<f32> {
        match self {
            Table::F32(m) => m.clone(),
            Table::U32(m) => Matrix {
                rows: m.rows(),
                cols: m.cols(),
                data: m.data().iter().map(|&v| v as f32).collect(),
            },
        }
    }
    pub fn into_f32(self) -> Matrix<f32> {
        match self {
            Table::F32(m) => m,
            other => other.to_f32(),
        }
    }
    /// Bytes of payload (what `input_total_size_MB` counts).
    pub fn byte_len(&self) -> usize {
        4 * self.rows() * self.cols()
    }
}

impl From<Matrix<f32>> for Table {
    fn from(m: Matrix<f32>) -> Self {
        Table::F32(m)
    }
}
impl From<Matrix<u32>> for Table {
    fn from(m: Matrix<u32>) -> Self {
        Table::U32(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_checked() {
        assert!(Matrix::new(2, 3, vec![0.0f32; 5]).is_err());
        let m = Matrix::new(2, 3, vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        assert_eq!(m.transpose().row(0), &[1.0, 4.0]);
        assert_eq!(m.get(2, 0), None);
    }

    #[test]
    fn non_finite_is_located() {
        let m = Matrix::new(2, 2, vec![1.0f32, 2.0, f32::NAN, 4.0]).unwrap();
        assert_eq!(m.first_non_finite(), Some((1, 0)));
        assert!(
            m.require_finite("points")
                .unwrap_err()
                .to_string()
                .contains("row 1, column 0")
        );
    }
}
