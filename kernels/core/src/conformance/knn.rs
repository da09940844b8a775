//! Conformance checks of knn (see the module docs of `crate::conformance`).

use super::Check;

pub fn checks() -> Vec<Check> {
    Vec::new()
}
