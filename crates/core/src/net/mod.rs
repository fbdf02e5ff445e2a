//! Network: the live probe (TLS client) and the local mTLS test gateway.

pub mod probe;
pub mod serve;
pub mod tls;
