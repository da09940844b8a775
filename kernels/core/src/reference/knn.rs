//! Reference knn (see the module docs of `crate::knn`).
