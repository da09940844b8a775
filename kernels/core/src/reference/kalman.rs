//! Reference kalman (see the module docs of `crate::kalman`).
