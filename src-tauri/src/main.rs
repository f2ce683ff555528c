//! `tocsin-desktop`: the tray app. Everything lives in the library ([`tocsin_desktop::run`]).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    tocsin_desktop::run()
}
