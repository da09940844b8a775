//! Reference wavelet (see the module docs of `crate::wavelet`).
