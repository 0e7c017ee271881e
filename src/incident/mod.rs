//! Incidents: one problem (a rule, one failure reason across the fleet, one
//! API error, one job) with an id, a state and a history. Plain functions
//! over plain types: which incident an entry belongs to ([`key`]), what one
//! batch adds to each ([`delta`]), and which transition is due ([`lifecycle`]).
//! The store (`ports::IncidentStore`) keeps them; the pipeline drives them.

pub mod clients;
pub mod delta;
pub mod key;
pub mod lifecycle;
pub mod silence;
