//! Reference black_scholes (see the module docs of `crate::black_scholes`).
