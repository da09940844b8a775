//! AWS Signature V4 verification of S3 requests (next step of the storage issue).
