//! The shell's own words (tray menu, status line, OS notifications, errors) in French
//! and English. The panel has its own dictionaries (ui/src/lib/i18n.ts); both follow
//! the same locale: the OS language unless the user picked one in Preferences.

use serde::{Deserialize, Serialize};

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// Français.
    Fr,
    /// English.
    En,
}

/// What the user chose in Preferences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Follow the OS.
    #[default]
    System,
    /// Always French.
    Fr,
    /// Always English.
    En,
}

impl Language {
    /// The locale in force: the choice, or the OS language (`fr*` → French, anything
    /// else → English).
    pub fn resolve(self, os_locale: Option<&str>) -> Locale {
        match self {
            Language::Fr => Locale::Fr,
            Language::En => Locale::En,
            Language::System => match os_locale {
                Some(tag) if tag.to_ascii_lowercase().starts_with("fr") => Locale::Fr,
                _ => Locale::En,
            },
        }
    }
}

/// Every fixed string of the shell.
#[derive(Debug)]
pub struct Strings {
    /// Tray status while live: followed by " — <firm>".
    pub status_live: &'static str,
    /// Tray status while (re)connecting.
    pub status_connecting: &'static str,
    /// Tray status while offline: followed by " HH:MM".
    pub status_offline_since: &'static str,
    /// Tray status when signed out.
    pub status_signed_out: &'static str,
    /// Menu: open the panel.
    pub menu_open: &'static str,
    /// Menu: mark everything read.
    pub menu_mark_all_read: &'static str,
    /// Menu: the pause submenu.
    pub menu_pause: &'static str,
    /// Menu: pause for an hour.
    pub menu_pause_hour: &'static str,
    /// Menu: pause until tomorrow morning.
    pub menu_pause_tomorrow: &'static str,
    /// Menu: end the pause.
    pub menu_resume: &'static str,
    /// Menu: preferences.
    pub menu_preferences: &'static str,
    /// Menu: sign out.
    pub menu_sign_out: &'static str,
    /// Menu: quit.
    pub menu_quit: &'static str,
    /// Notification action: open the item's link in the firm's software, or the
    /// panel at the item when it has none. The panel's "Open" has its own string.
    pub action_open: &'static str,
    /// Notification action: mark the item read.
    pub action_mark_read: &'static str,
    /// Notification action on a critical deadline: acknowledge it ("Pris en compte"),
    /// for the whole firm; not the same as marking it read.
    pub action_acknowledge: &'static str,
    /// Notification body of an escalation: `{owner}` is the owner who did not
    /// acknowledge the deadline.
    pub escalated_from: &'static str,
    /// Escalation body when the owner's name is not known.
    pub escalated_anonymous: &'static str,
    /// Catch-up summary title: "{n} …".
    pub summary_title: &'static str,
    /// Dossier prefix in notification bodies.
    pub dossier: &'static str,
    /// Deadline due prefix in notification bodies, with the language's colon.
    pub due: &'static str,
    /// A command needs a signed-in account.
    pub not_signed_in: &'static str,
    /// Sign-in: not a URL.
    pub err_invalid_url: &'static str,
    /// Sign-in: plain http to another machine.
    pub err_insecure_url: &'static str,
    /// Sign-in: cannot connect.
    pub err_unreachable: &'static str,
    /// Sign-in: TLS failure.
    pub err_tls: &'static str,
    /// Sign-in: a certificate this computer does not trust (self-signed): the user
    /// is asked to compare its fingerprint with the IT person's.
    pub err_untrusted_certificate: &'static str,
    /// A confirmed (pinned) certificate was replaced by another one.
    pub err_certificate_changed: &'static str,
    /// Sign-in: the fingerprint to trust is not a SHA-256 fingerprint.
    pub err_invalid_fingerprint: &'static str,
    /// Sign-in: wrong email or password.
    pub err_unauthorized: &'static str,
    /// Sign-in: too many attempts.
    pub err_rate_limited: &'static str,
    /// Sign-in: the gateway failed.
    pub err_server: &'static str,
    /// Sign-in: an unexpected answer.
    pub err_protocol: &'static str,
    /// Open: the system has no handler for the link (no browser, the firm's software
    /// not installed); followed by " (<the system's error>)".
    pub err_open_failed: &'static str,
    /// Open: the notification has no link that may be opened.
    pub err_no_link: &'static str,
    /// Calendar feed: the engine holds no valid access token (not connected).
    pub err_calendar_offline: &'static str,
    /// Calendar feed: the gateway refused this device's access token.
    pub err_calendar_refused: &'static str,
    /// Calendar feed: the gateway has no such route (an older version).
    pub err_calendar_unsupported: &'static str,
    /// Panel notice: no notification service.
    pub no_notification_service: &'static str,
    /// Panel notice: no secret store.
    pub no_secret_store: &'static str,
}

const FR: Strings = Strings {
    status_live: "En direct",
    status_connecting: "Connexion…",
    status_offline_since: "Déconnecté depuis",
    status_signed_out: "Non connecté — ouvrez Tocsin pour vous identifier",
    menu_open: "Ouvrir Tocsin",
    menu_mark_all_read: "Tout marquer comme lu",
    menu_pause: "Suspendre les notifications",
    menu_pause_hour: "Pendant 1 heure",
    menu_pause_tomorrow: "Jusqu'à demain 08:00",
    menu_resume: "Reprendre",
    menu_preferences: "Préférences…",
    menu_sign_out: "Se déconnecter",
    menu_quit: "Quitter",
    action_open: "Ouvrir",
    action_mark_read: "Marquer comme lu",
    action_acknowledge: "Pris en compte",
    escalated_from: "{owner} n'a pas pris en compte ce délai",
    escalated_anonymous: "Le responsable n'a pas pris en compte ce délai",
    summary_title: "nouvelles notifications pendant votre absence",
    dossier: "Dossier",
    due: "Échéance :",
    not_signed_in: "Vous n'êtes pas connecté : identifiez-vous d'abord.",
    err_invalid_url: "Adresse de passerelle invalide : saisissez par exemple https://tocsin.cabinet.fr",
    err_insecure_url: "http:// en clair n'est accepté que vers cette machine : utilisez https://",
    err_unreachable: "Passerelle injoignable : vérifiez l'adresse et votre connexion réseau",
    err_tls: "Connexion sécurisée impossible (certificat TLS) : vérifiez l'adresse ou demandez à votre informaticien",
    err_untrusted_certificate: "Certificat inconnu de cet ordinateur : comparez son empreinte avec celle que votre informaticien vous a donnée",
    err_certificate_changed: "Le certificat de la passerelle a changé : ne continuez pas avant que votre informaticien vous confirme la nouvelle empreinte, puis reconnectez-vous pour l'accepter",
    err_invalid_fingerprint: "Empreinte invalide : 64 chiffres hexadécimaux attendus",
    err_unauthorized: "Adresse e-mail ou mot de passe incorrect",
    err_rate_limited: "Trop de tentatives : patientez un peu avant de réessayer",
    err_server: "La passerelle a rencontré une erreur : réessayez plus tard",
    err_protocol: "Réponse inattendue : est-ce bien une passerelle Tocsin ?",
    err_open_failed: "Impossible d'ouvrir le lien : aucun logiciel de cette machine ne le prend en charge",
    err_no_link: "Cette notification n'a pas de lien à ouvrir",
    err_calendar_offline: "Pas de connexion à la passerelle : le lien de calendrier se crée une fois connecté",
    err_calendar_refused: "La passerelle a refusé la demande pour cet appareil : attendez la reconnexion puis réessayez",
    err_calendar_unsupported: "Cette passerelle ne propose pas de flux de calendrier (version trop ancienne ?)",
    no_notification_service: "Aucun service de notifications du système ne répond ; l'icône et ce panneau restent à jour",
    no_secret_store: "Aucun trousseau du système n'est disponible : la connexion ne sera pas conservée après la fermeture de Tocsin",
};

const EN: Strings = Strings {
    status_live: "Live",
    status_connecting: "Connecting…",
    status_offline_since: "Offline since",
    status_signed_out: "Signed out — open Tocsin to sign in",
    menu_open: "Open Tocsin",
    menu_mark_all_read: "Mark all as read",
    menu_pause: "Pause notifications",
    menu_pause_hour: "For 1 hour",
    menu_pause_tomorrow: "Until tomorrow 08:00",
    menu_resume: "Resume",
    menu_preferences: "Preferences…",
    menu_sign_out: "Sign out",
    menu_quit: "Quit",
    action_open: "Open",
    action_mark_read: "Mark as read",
    action_acknowledge: "Acknowledge",
    escalated_from: "{owner} has not acknowledged this deadline",
    escalated_anonymous: "Its owner has not acknowledged this deadline",
    summary_title: "new notifications while you were away",
    dossier: "Dossier",
    due: "Due:",
    not_signed_in: "You are not signed in: sign in first.",
    err_invalid_url: "Invalid gateway address: enter e.g. https://tocsin.example-firm.com",
    err_insecure_url: "Plain http:// is only allowed to this machine: use https://",
    err_unreachable: "Cannot reach the gateway: check the address and your network",
    err_tls: "No secure connection (TLS certificate): check the address or ask your IT contact",
    err_untrusted_certificate: "This computer does not know the gateway's certificate: compare its fingerprint with the one your IT person gave you",
    err_certificate_changed: "The gateway's certificate changed: do not continue until your IT person confirms the new fingerprint, then sign in again to accept it",
    err_invalid_fingerprint: "Invalid fingerprint: 64 hexadecimal digits expected",
    err_unauthorized: "Wrong email or password",
    err_rate_limited: "Too many attempts: wait a little before trying again",
    err_server: "The gateway failed: try again later",
    err_protocol: "Unexpected answer: is this a Tocsin gateway?",
    err_open_failed: "Cannot open the link: no application on this machine handles it",
    err_no_link: "This notification has no link to open",
    err_calendar_offline: "Not connected to the gateway: the calendar link can be made once connected",
    err_calendar_refused: "The gateway refused this device's request: wait until it reconnects, then try again",
    err_calendar_unsupported: "This gateway offers no calendar feed (an older version?)",
    no_notification_service: "No OS notification service answers; the tray badge and this panel stay up to date",
    no_secret_store: "No OS keyring is available: you will have to sign in again after Tocsin quits",
};

impl Locale {
    /// This locale's strings.
    pub fn strings(self) -> &'static Strings {
        match self {
            Locale::Fr => &FR,
            Locale::En => &EN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_language_decides_unless_the_user_chose() {
        assert_eq!(Language::System.resolve(Some("fr-FR")), Locale::Fr);
        assert_eq!(Language::System.resolve(Some("fr_BE.UTF-8")), Locale::Fr);
        assert_eq!(Language::System.resolve(Some("en-GB")), Locale::En);
        assert_eq!(Language::System.resolve(Some("de-DE")), Locale::En);
        assert_eq!(Language::System.resolve(None), Locale::En);
        assert_eq!(Language::En.resolve(Some("fr-FR")), Locale::En);
        assert_eq!(Language::Fr.resolve(Some("en-US")), Locale::Fr);
    }

    #[test]
    fn both_languages_say_something_different_for_the_status_line() {
        assert_ne!(
            Locale::Fr.strings().status_live,
            Locale::En.strings().status_live
        );
        assert_eq!(Locale::Fr.strings().status_connecting, "Connexion…");
    }
}
