//! What a scenario reports: one JSON line (for tools and docs/BENCHMARKS.md) and a few
//! human lines, with each figure set against its target from the benchmark issue.
//!
//! Targets are reported, never enforced: a missed target does not fail the run.

use serde::Serialize;
use serde_json::{Map, Value};

/// One target from the issue and the figure measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured, e.g. "bytes per idle connection at 10k".
    pub what: String,
    /// The target as written, e.g. "≤ 5120".
    pub target: String,
    /// The measured figure.
    pub measured: f64,
    /// Whether the figure meets the target.
    pub met: bool,
}

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `idle`, `fanout`, …
    pub scenario: String,
    /// The parameters it ran with (N, rates, runs…).
    pub params: Map<String, Value>,
    /// The figures, by name; medians where the scenario repeats.
    pub metrics: Map<String, Value>,
    /// Targets checked.
    pub targets: Vec<Target>,
    /// Human lines for the summary.
    #[serde(skip)]
    pub lines: Vec<String>,
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            params: Map::new(),
            metrics: Map::new(),
            targets: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, name: &str, value: impl Serialize) -> &mut Report {
        self.params.insert(name.to_owned(), to_value(value));
        self
    }

    /// Records a figure.
    pub fn metric(&mut self, name: &str, value: impl Serialize) -> &mut Report {
        self.metrics.insert(name.to_owned(), to_value(value));
        self
    }

    /// Checks a figure that must be at most `limit`.
    pub fn at_most(&mut self, what: &str, measured: f64, limit: f64, unit: &str) -> &mut Report {
        self.targets.push(Target {
            what: what.to_owned(),
            target: format!("≤ {limit} {unit}"),
            measured,
            met: measured <= limit,
        });
        self
    }

    /// Checks a figure that must be at least `floor`.
    pub fn at_least(&mut self, what: &str, measured: f64, floor: f64, unit: &str) -> &mut Report {
        self.targets.push(Target {
            what: what.to_owned(),
            target: format!("≥ {floor} {unit}"),
            measured,
            met: measured >= floor,
        });
        self
    }

    /// Adds a human line to the summary.
    pub fn line(&mut self, text: impl Into<String>) -> &mut Report {
        self.lines.push(text.into());
        self
    }

    /// The JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary: the lines, then each target as met or MISSED.
    pub fn human(&self) -> String {
        let mut out = format!("── {} ──\n", self.scenario);
        for line in &self.lines {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        for target in &self.targets {
            let verdict = if target.met { "met" } else { "MISSED" };
            out.push_str(&format!(
                "  target {}: {} (measured {}) {verdict}\n",
                target.what,
                target.target,
                round(target.measured)
            ));
        }
        out
    }
}

fn to_value(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Rounds a figure for people: 3 significant digits, no exponent.
pub fn round(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_target_says_so_and_the_json_keeps_it() {
        let mut report = Report::new("idle");
        report
            .param("connections", 1000)
            .metric("bytes_per_connection", 6000.0)
            .at_most("bytes per idle connection", 6000.0, 5120.0, "B");
        assert!(report.human().contains("MISSED"), "{}", report.human());
        let json: Value = serde_json::from_str(&report.json_line()).expect("valid JSON");
        assert_eq!(json["scenario"], "idle");
        assert_eq!(json["targets"][0]["met"], false);
        assert_eq!(json["params"]["connections"], 1000);
    }

    #[test]
    fn figures_are_rounded_for_people() {
        assert_eq!(round(152_345.6), "152346");
        assert_eq!(round(12.345), "12.3");
        assert_eq!(round(0.01234), "0.012");
    }
}
