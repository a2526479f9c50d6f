//! MCP log levels as the numbers the call protocol carries (a CALL's log
//! level, `core::call::Call::log_level`): RFC 5424 order as MCP uses it, 0
//! debug (the least severe) to 7 emergency. One mapping for the front, the
//! upstream manager and the example agent.

// Logging is deprecated by SEP-2577 (2026-07-28) but is part of 2025-11-25.
#![allow(deprecated)]

use rmcp::model::LoggingLevel;

/// The level's severity, 0 (debug) to 7 (emergency).
pub fn severity(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The level of a severity; anything above 7 is emergency.
pub fn level(severity: u8) -> LoggingLevel {
    match severity {
        0 => LoggingLevel::Debug,
        1 => LoggingLevel::Info,
        2 => LoggingLevel::Notice,
        3 => LoggingLevel::Warning,
        4 => LoggingLevel::Error,
        5 => LoggingLevel::Critical,
        6 => LoggingLevel::Alert,
        _ => LoggingLevel::Emergency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_round_trip_in_order() {
        for s in 0..8u8 {
            assert_eq!(severity(level(s)), s);
        }
        assert_eq!(level(200), LoggingLevel::Emergency);
        assert_eq!(
            serde_json::to_value(level(3)).unwrap(),
            serde_json::json!("warning")
        );
    }
}
