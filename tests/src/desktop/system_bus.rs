//! A stand-in system bus with a fake logind: the app hears "the machine woke up"
//! (`PrepareForSleep(false)`) exactly as from the real `org.freedesktop.login1`.
//!
//! The app listens to logind and NetworkManager on the *system* bus, whose address it
//! takes from `DBUS_SYSTEM_BUS_ADDRESS`. The session never hands the machine's own
//! system bus to the app (`DesktopSession::REMOVED_ENV`); a test that wants nudges
//! starts this private `dbus-daemon` and points the app at it ([`Self::env`]). The
//! fake owns logind's well-known name before the app starts, so the app's match rules
//! (which name that service as the sender) accept its signals.

use anyhow::{Context, Result};

use tocsin_harness::process::Supervised;
use tocsin_harness::session::start_bus;

use super::session::DesktopSession;

/// logind's well-known name, object and interface.
const LOGIND_NAME: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_INTERFACE: &str = "org.freedesktop.login1.Manager";

/// The private system bus and the fake logind on it.
pub struct FakeSystemBus {
    /// The bus's address.
    address: String,
    /// The connection that owns logind's name and emits its signals.
    logind: zbus::Connection,
    /// The `dbus-daemon` (killed when dropped).
    _daemon: Supervised,
}

impl FakeSystemBus {
    /// Starts the bus inside `session` and takes logind's name on it.
    pub async fn start(session: &DesktopSession) -> Result<FakeSystemBus> {
        let (daemon, address) = start_bus(session.root(), "system", session.display()).await?;
        let logind = zbus::connection::Builder::address(address.as_str())
            .name(LOGIND_NAME)
            .build()
            .await
            .with_context(|| format!("cannot own {LOGIND_NAME} on {address}"))?;
        Ok(FakeSystemBus {
            address,
            logind,
            _daemon: daemon,
        })
    }

    /// The variable that makes the app use this bus as its system bus.
    pub fn env(&self) -> (String, String) {
        ("DBUS_SYSTEM_BUS_ADDRESS".to_owned(), self.address.clone())
    }

    /// Emits logind's `PrepareForSleep(sleeping)`: `true` before sleep, `false` on wake.
    pub async fn prepare_for_sleep(&self, sleeping: bool) -> Result<()> {
        self.logind
            .emit_signal(
                None::<()>,
                LOGIND_PATH,
                LOGIND_INTERFACE,
                "PrepareForSleep",
                &(sleeping,),
            )
            .await
            .context("emitting PrepareForSleep")
    }
}
