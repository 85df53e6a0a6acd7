//! The plugin's configuration (capability `config`): the installation's JSON, else the
//! manifest's default.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::portico::plugin::config as host;

/// Decodes the configuration into `T`; a mismatch is an [`crate::ErrorKind::Invalid`] error
/// naming the field.
pub fn get<T: DeserializeOwned>() -> Result<T, Error> {
    let text = host::get()?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(format!("plugin configuration: {e}")))
}

/// The configuration as a JSON value.
pub fn json() -> Result<serde_json::Value, Error> {
    get()
}

/// What the `config-check` export runs: `text` parsed as JSON (text that is not JSON is one
/// issue at its line and column), then `P`'s check.
#[doc(hidden)]
pub fn run_check<P: crate::ConfigCheck>(text: &str) -> Result<Vec<crate::ConfigIssue>, Error> {
    match serde_json::from_str(text) {
        Ok(value) => P::check_config(value),
        Err(e) => Ok(vec![
            crate::ConfigIssue::new("", format!("not JSON: {e}"))
                .at(e.line() as u32, e.column() as u32),
        ]),
    }
}
