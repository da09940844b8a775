//! Reference fft (see the module docs of `crate::fft`).
