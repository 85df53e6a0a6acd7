//! Plain records shared by storage and the features that own them: serde shapes and small
//! conversions only, no I/O and no imports from the rest of the crate. Storage reads and
//! writes these; each feature module re-exports its own and adds the behaviour.

pub mod audit;
pub mod auth;
pub mod console;
pub mod helm;
pub mod hooks;
pub mod jobs;
pub mod plugin;
