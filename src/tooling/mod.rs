//! Developer tooling, not part of the function: building events as
//! CloudWatch Logs delivers them, the inbox of a local stack, and the failure
//! destination's records. Behind the `tooling` feature (on by default), so
//! the function builds without it (`make lint` checks that it does).

pub mod encode;
pub mod inbox;
pub mod redrive;
