//! The command line: `tocsin-desktop [--hidden] [--home DIR] [--server URL --email E
//! --password-stdin]`. Sign-in flags exist for the demo, scripted installs and tests;
//! users sign in with the window.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Parser;

/// Tocsin's desktop tray app.
#[derive(Debug, Clone, Parser)]
#[command(name = "tocsin-desktop", version, about)]
pub struct Cli {
    /// Start in the tray only, without opening the panel (used when starting at login).
    #[arg(long)]
    pub hidden: bool,
    /// Keep the profile, settings and local database here instead of the per-user
    /// directories (several profiles, tests, the demo).
    #[arg(long, env = "TOCSIN_DESKTOP_HOME")]
    pub home: Option<PathBuf>,
    /// Sign in to this gateway at start, without the window (needs --email and
    /// --password-stdin).
    #[arg(long, requires_all = ["email", "password_stdin"])]
    pub server: Option<String>,
    /// The email to sign in with.
    #[arg(long, requires = "server")]
    pub email: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, requires = "server")]
    pub password_stdin: bool,
}

/// A sign-in asked for on the command line.
#[derive(Clone)]
pub struct SignIn {
    /// The gateway.
    pub server: String,
    /// The email.
    pub email: String,
    /// The password (never logged).
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("server", &self.server)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl Cli {
    /// The sign-in to perform at start, reading the password from stdin.
    pub fn sign_in(&self) -> anyhow::Result<Option<SignIn>> {
        let (Some(server), Some(email)) = (&self.server, &self.email) else {
            return Ok(None);
        };
        let mut password = String::new();
        std::io::stdin().lock().read_line(&mut password)?;
        let password = password.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            anyhow::bail!("--password-stdin: standard input gave no password");
        }
        Ok(Some(SignIn {
            server: server.clone(),
            email: email.clone(),
            password,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_flags_go_together() {
        assert!(Cli::try_parse_from(["t", "--server", "http://127.0.0.1:1"]).is_err());
        assert!(Cli::try_parse_from(["t", "--email", "a@b.fr"]).is_err());
        let cli = Cli::try_parse_from([
            "t",
            "--hidden",
            "--server",
            "http://127.0.0.1:1",
            "--email",
            "a@b.fr",
            "--password-stdin",
        ])
        .expect("valid");
        assert!(cli.hidden);
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let sign_in = SignIn {
            server: "s".into(),
            email: "e".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{sign_in:?}").contains("hunter2"));
    }
}
