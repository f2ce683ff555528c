//! Deadlines the gateway owns (docs/DEADLINES.md): the firm's software declares a
//! deadline once; the gateway plans its reminders in working days, raises them, knows
//! whether someone took the deadline in, escalates when nobody did, and keeps the
//! proof.
//!
//! - [`calendar`]: public holidays and working-day arithmetic.
//! - [`plan`]: a reminder policy → the instants its reminders go at.
//! - [`settings`]: a firm's zone, calendar, policy and escalation delays.
//! - [`declare`]: `PUT /v1/deadlines/{id}` → the stored deadline and its new plan.
//! - [`firing`]: what each due step raises, to whom, and what it plans next.
//! - [`scheduler`]: the task that applies due steps (also scheduled publishes).
//! - [`view`]: a deadline as the API shows it.
//! - [`ics`]: a user's open deadlines as an iCalendar feed (RFC 5545).

pub mod calendar;
pub mod declare;
pub mod firing;
pub mod ics;
pub mod plan;
pub mod scheduler;
pub mod settings;
pub mod view;
