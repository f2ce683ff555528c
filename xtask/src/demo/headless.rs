//! `--headless`: the harness's private desktop session
//! ([`tocsin_harness::session`]) for the app on a machine without a screen, set up the
//! demo's way.
//!
//! Xvfb (a virtual 1280×800 screen on a display it picks itself), a session bus of its
//! own with no service activation (nothing of the machine's is started behind the
//! demo's back), gnome-keyring's Secret Service unlocked with a throwaway password and
//! home (the app keeps its refresh token there), and dunst, which draws OS
//! notifications on the virtual screen so the screenshots show them. Everything is
//! stopped by [`PrivateSession::stop`], or killed on drop.

use std::path::Path;

use anyhow::Result;
use tocsin_harness::session::{PrivateSession, SessionConfig};

/// The session the demo's app runs in.
pub type Headless = PrivateSession;

/// The throwaway keyring's password.
const KEYRING_PASSWORD: &str = "tocsin-demo";

/// Starts Xvfb, the bus, the keyring and dunst under `dir`.
pub async fn start(dir: &Path) -> Result<Headless> {
    let config = SessionConfig {
        keyring_password: Some(KEYRING_PASSWORD.to_owned()),
        dunstrc: Some(DUNSTRC.to_owned()),
    };
    PrivateSession::start(dir, &config).await
}

/// dunst, readable in a screenshot: popups top right, beside the panel (centred,
/// 380 px wide) rather than over it, compact enough for the whole scenario to fit;
/// critical ones in red and kept until dismissed, as on a real desktop.
const DUNSTRC: &str = r##"[global]
    monitor = 0
    follow = none
    width = 380
    height = 200
    origin = top-right
    offset = 16x16
    notification_limit = 0
    padding = 7
    horizontal_padding = 10
    frame_width = 2
    frame_color = "#4c566a"
    separator_color = frame
    gap_size = 5
    font = DejaVu Sans 9
    markup = full
    format = "<b>%s</b>\n%b"
    word_wrap = yes
    icon_position = off
    show_indicators = no

[urgency_low]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 30

[urgency_normal]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 30

[urgency_critical]
    background = "#b3261e"
    foreground = "#ffffff"
    frame_color = "#6d0f0a"
    timeout = 0
"##;
