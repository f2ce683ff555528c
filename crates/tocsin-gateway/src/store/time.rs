//! Times as both stores keep them: integer microseconds since the Unix epoch (`*_us`
//! columns), and stream epochs.

use chrono::{DateTime, Utc};

/// Microseconds since the epoch.
pub fn to_us(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Back from microseconds.
pub fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A fresh random epoch: 16 hex digits.
pub fn new_epoch() -> String {
    let bytes: [u8; 8] = rand::random();
    hex::encode(bytes)
}
