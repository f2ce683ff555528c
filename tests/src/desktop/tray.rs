//! The tray as the desktop shell sees it, over D-Bus: the harness's fake
//! `org.kde.StatusNotifierWatcher` and [`TrayItem`] view
//! ([`tocsin_harness::desktop::tray`]), shared with the desktop benchmark.

pub use tocsin_harness::desktop::tray::*;
