/**
 * The bell's words in French and English. Keys shared with the desktop panel carry
 * the panel's exact text (a unit test compares them with ui/src/lib/i18n.ts); the
 * `bell.*` keys are the element's own.
 */

export type Locale = "fr" | "en";

const fr = {
  "conn.connected": "En direct — {tenant}",
  "conn.connecting": "Connexion…",
  "conn.offline": "Déconnecté depuis {time}",
  "conn.signed_out": "Non connecté",
  "tabs.label": "Catégories de notifications",
  "tab.emails": "Courriels",
  "tab.dossiers": "Dossiers",
  "tab.deadlines": "Échéances",
  "tab.proposals": "Propositions",
  "tab.system": "Système",
  "tab.unread_sr": "non lus",
  "list.unread.one": "{count} non lu",
  "list.unread.other": "{count} non lus",
  "list.all_read": "Tout est lu",
  "list.mark_all": "Tout marquer comme lu",
  "empty.emails": "Aucun courriel",
  "empty.dossiers": "Aucune mise à jour de dossier",
  "empty.deadlines": "Aucune échéance à venir",
  "empty.proposals": "Aucune proposition de rendez-vous",
  "empty.system": "Aucun avis système",
  "empty.hint": "Les nouvelles notifications apparaîtront ici.",
  "item.unread_sr": "Non lu",
  "item.mark_read": "Marquer comme lu",
  "item.mark_read_named": "Marquer comme lu : {title}",
  "item.open": "Ouvrir",
  "item.open_named": "Ouvrir dans le logiciel du cabinet : {title}",
  "urgency.critical": "Critique",
  "urgency.high": "Important",
  "live.new": "Nouveau : {title}",
  "ack.button": "Pris en compte",
  "ack.button_named": "Pris en compte : {title}",
  "ack.sending": "Envoi…",
  "ack.by": "Pris en compte par {who} à {time}",
  "ack.someone": "un collègue",
  "bell.label": "Notifications",
  "bell.close": "Fermer",
  "bell.stopped.signed_out": "Session terminée : reconnectez-vous",
  "bell.stopped.forbidden": "Accès refusé : contactez l’administrateur du cabinet",
  "bell.stopped.too_many_connections": "Trop de connexions ouvertes : fermez une autre fenêtre",
  "bell.stopped.other": "Déconnecté",
  "bell.retry": "Réessayer",
  "bell.notify.ask": "Activer les alertes du navigateur pour les échéances critiques",
  "bell.notify.denied": "Alertes du navigateur refusées : le badge reste à jour.",
};

type Key = keyof typeof fr;

const en: Record<Key, string> = {
  "conn.connected": "Live — {tenant}",
  "conn.connecting": "Connecting…",
  "conn.offline": "Offline since {time}",
  "conn.signed_out": "Signed out",
  "tabs.label": "Notification categories",
  "tab.emails": "Emails",
  "tab.dossiers": "Dossiers",
  "tab.deadlines": "Deadlines",
  "tab.proposals": "Proposals",
  "tab.system": "System",
  "tab.unread_sr": "unread",
  "list.unread.one": "{count} unread",
  "list.unread.other": "{count} unread",
  "list.all_read": "All caught up",
  "list.mark_all": "Mark all as read",
  "empty.emails": "No emails",
  "empty.dossiers": "No dossier updates",
  "empty.deadlines": "No upcoming deadlines",
  "empty.proposals": "No appointment proposals",
  "empty.system": "No system notices",
  "empty.hint": "New notifications will appear here.",
  "item.unread_sr": "Unread",
  "item.mark_read": "Mark as read",
  "item.mark_read_named": "Mark as read: {title}",
  "item.open": "Open",
  "item.open_named": "Open in the firm’s software: {title}",
  "urgency.critical": "Critical",
  "urgency.high": "High",
  "live.new": "New: {title}",
  "ack.button": "Acknowledge",
  "ack.button_named": "Acknowledge: {title}",
  "ack.sending": "Sending…",
  "ack.by": "Acknowledged by {who} at {time}",
  "ack.someone": "a colleague",
  "bell.label": "Notifications",
  "bell.close": "Close",
  "bell.stopped.signed_out": "Session ended: sign in again",
  "bell.stopped.forbidden": "Access refused: contact your firm’s administrator",
  "bell.stopped.too_many_connections": "Too many connections open: close another window",
  "bell.stopped.other": "Disconnected",
  "bell.retry": "Retry",
  "bell.notify.ask": "Turn on browser alerts for critical deadlines",
  "bell.notify.denied": "Browser alerts are blocked: the badge stays up to date.",
};

export const dictionaries: Record<Locale, Record<Key, string>> = { fr, en };

export type WordKey = Key;

/** The text of `key`, with `{name}` replaced from `params`. */
export function t(locale: Locale, key: Key, params: Record<string, string | number> = {}): string {
  return dictionaries[locale][key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** "3 non lus" / "1 unread", with the language's plural rules. */
export function unreadCount(locale: Locale, count: number): string {
  const form = new Intl.PluralRules(locale).select(count) === "one" ? "list.unread.one" : "list.unread.other";
  return t(locale, form, { count });
}

/** The page's language when it is French or English, else French (the firms are French). */
export function detectLocale(lang: string | null | undefined): Locale {
  return lang?.toLowerCase().startsWith("en") ? "en" : "fr";
}
