//! Reference savgol (see the module docs of `crate::savgol`).
