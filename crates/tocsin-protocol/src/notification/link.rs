//! A notification's `url`: where it leads in the firm's software.
//!
//! The desktop opens it with the system's URL handler when the user clicks "Open", so
//! the gateway refuses at publish — and the desktop checks again before opening —
//! anything that would run code or read local files instead of opening a page of the
//! firm's software: only absolute URLs, `http:` and `https:` with a host, or an
//! application scheme of the firm's software (`secib://dossier/2026-0142`), never
//! `javascript:`, `data:`, `file:` and their like.

/// The longest `url` accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Schemes that run code or reach local or in-memory content when opened.
const REFUSED_SCHEMES: [&str; 8] = [
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "about",
    "filesystem",
    "jar",
];

/// `Err` says what is wrong with a notification's `url` and what to send instead.
pub fn check_url(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > MAX_URL_LEN {
        return Err(format!("url must be 1-{MAX_URL_LEN} bytes"));
    }
    let parsed = url::Url::parse(text)
        .map_err(|err| format!("url must be an absolute URL such as https://…: {err}"))?;
    let scheme = parsed.scheme();
    if REFUSED_SCHEMES.contains(&scheme) {
        return Err(format!(
            "url may not use the '{scheme}:' scheme; use https:// or your software's own scheme"
        ));
    }
    if matches!(scheme, "http" | "https") && parsed.host_str().is_none_or(str::is_empty) {
        return Err("url must name a host, e.g. https://ged.cabinet.fr/…".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_application_links_are_accepted() {
        for ok in [
            "https://ged.cabinet.fr/dossiers/2026-0142",
            "http://10.0.0.5:8080/mail?id=42",
            "secib://dossier/2026-0142",
            "mailto:martin@exemple.fr",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn links_that_run_code_or_read_files_are_refused() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "file:///etc/passwd",
            "/dossiers/2026-0142",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://a.fr/{}", "x".repeat(MAX_URL_LEN))).is_err());
    }
}
