//! The wall clock as the gateway stores it.

/// Milliseconds since the unix epoch, the timestamp form of every table and API field.
pub fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
