//! Reference kmeans (see the module docs of `crate::kmeans`).
