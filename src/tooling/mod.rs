//! Developer tooling, not part of the function: building events as
//! CloudWatch Logs delivers them, the local stack on moto, and the failure
//! destination's records. Behind the `tooling` feature (on by default), so
//! the function builds without it (`make lint` checks that it does).

pub mod encode;
pub mod local;
pub mod redrive;
