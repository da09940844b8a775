//! Reference dtw (see the module docs of `crate::dtw`).
