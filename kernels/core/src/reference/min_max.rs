//! Reference min_max (see the module docs of `crate::min_max`).
