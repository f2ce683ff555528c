//! Placeholder: filled by the acknowledgement tests.
