//! Test harness for Portico's end-to-end tests.
//!
//! Everything starts in-process or as a child process on port 0 and is torn down on drop:
//! - [`postgres::TestPostgres`]: a throwaway PostgreSQL cluster (`initdb` + `pg_ctl`).
//! - [`gateway::TestGateway`]: a Portico gateway serving on an ephemeral port.
//! - [`kubectl`] and [`python`]: run the real `kubectl` and the Python `kubernetes` client.
//! - [`oidc::OidcProvider`]: a real OpenID provider (npm `oidc-provider`) run by Node.

pub mod browser;
pub mod console;
pub mod fleet;
pub mod gateway;
pub mod kubectl;
pub mod oidc;
pub mod plugins;
pub mod postgres;
pub mod python;
