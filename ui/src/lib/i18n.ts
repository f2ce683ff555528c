// The panel's words: the French and English dictionaries (same keys, checked by the
// compiler and by a unit test), {name} interpolation and plural forms (Intl.PluralRules).
// Everything here is pure; locale.svelte.ts makes it reactive to the current locale.

import type { Locale } from './ipc';

const fr = {
  'app.name': 'Tocsin',

  'conn.connected': 'En direct — {tenant}',
  'conn.connecting': 'Connexion…',
  'conn.connecting_detail': 'Tentative {attempt}, nouvel essai à {time}',
  'conn.connecting_detail_now': 'Tentative {attempt}',
  'conn.offline': 'Déconnecté depuis {time}',
  'conn.signed_out': 'Non connecté',
  'conn.connected_detail': 'Connecté depuis {time}',

  'offline.title': 'Hors ligne',
  'offline.pending.one': '{count} action en attente d’envoi',
  'offline.pending.other': '{count} actions en attente d’envoi',
  'offline.hint': 'Elles partiront dès le retour de la connexion.',
  'notif.problem':
    'Notifications du système indisponibles : {problem} ; le badge et ce panneau fonctionnent toujours.',
  'notif.problem_unknown':
    'Notifications du système indisponibles ; le badge et ce panneau fonctionnent toujours.',
  'paused.text': 'Notifications en pause jusqu’à {time}',
  'paused.resume': 'Reprendre',

  'tabs.label': 'Catégories de notifications',
  'tab.emails': 'Courriels',
  'tab.dossiers': 'Dossiers',
  'tab.deadlines': 'Échéances',
  'tab.proposals': 'Propositions',
  'tab.system': 'Système',
  'tab.unread_sr': 'non lus',
  'tab.ack_sr': 'à prendre en compte',

  'list.unread.one': '{count} non lu',
  'list.unread.other': '{count} non lus',
  'list.all_read': 'Tout est lu',
  'list.mark_all': 'Tout marquer comme lu',
  'list.load_more': 'Afficher plus',
  'list.loading': 'Chargement…',
  'list.error': 'Impossible de charger la liste : {message}',
  'list.retry': 'Réessayer',
  'empty.emails': 'Aucun courriel',
  'empty.dossiers': 'Aucune mise à jour de dossier',
  'empty.deadlines': 'Aucune échéance à venir',
  'empty.proposals': 'Aucune proposition de rendez-vous',
  'empty.system': 'Aucun avis système',
  'empty.hint': 'Les nouvelles notifications apparaîtront ici.',

  'item.unread_sr': 'Non lu',
  'item.mark_read': 'Marquer comme lu',
  'item.mark_read_named': 'Marquer comme lu : {title}',
  'item.open': 'Ouvrir',
  'item.open_named': 'Ouvrir dans le logiciel du cabinet : {title}',
  'item.dossier_sr': 'Dossier',
  'item.attachments': 'Pièces jointes',

  'urgency.low': 'Faible',
  'urgency.normal': 'Normale',
  'urgency.high': 'Important',
  'urgency.critical': 'Critique',
  'deadline.urgency.info': 'Information',
  'deadline.urgency.warning': 'Attention',
  'deadline.urgency.urgent': 'Urgent',
  'deadline.urgency.critical': 'Critique',
  'deadline.due_sr': 'Échéance',
  'deadline.overdue': 'En retard',
  'deadline.working.today': 'Jour J',
  'deadline.working.past': 'Échéance dépassée',
  'deadline.working.one': 'J-{count} ouvré',
  'deadline.working.other': 'J-{count} ouvrés',
  'deadline.working_sr': 'Jours ouvrés restants',
  'deadline.as_of': 'Jours ouvrés comptés au {time}',
  'deadline.reminder': 'Rappel {label}',
  'deadline.details': 'Détails',
  'deadline.hide_details': 'Masquer les détails',
  'deadline.acks_title': 'Prises en compte',
  'ack.button': 'Pris en compte',
  'ack.button_named': 'Pris en compte : {title}',
  'ack.sending': 'Envoi…',
  'ack.by': 'Pris en compte par {who} à {time}',
  'ack.by_me': 'Pris en compte par vous sur cet appareil à {time}',
  'ack.pending': 'en attente de confirmation',
  'ack.someone': 'un collègue',
  'ack.refused': 'Prise en compte refusée : {message}',
  'escalation.from': '{owner} n’a pas pris en compte ce délai',
  'escalation.anonymous': 'Le responsable n’a pas pris en compte ce délai',

  'proposal.by': 'Proposé par {name}',
  'proposal.location': 'Lieu : {place}',
  'proposal.when_sr': 'Date',
  'proposal.status.pending': 'En attente de réponse',
  'proposal.status.accepted': 'Acceptée',
  'proposal.status.rejected': 'Refusée',
  'proposal.status.cancelled': 'Annulée',
  'proposal.accept': 'Accepter',
  'proposal.reject': 'Refuser',
  'proposal.accept_named': 'Accepter : {title}',
  'proposal.reject_named': 'Refuser : {title}',
  'proposal.sending': 'Envoi de la réponse…',
  'proposal.queued': 'Réponse en attente de la connexion',

  'live.new': 'Nouveau : {title}',
  'live.new_many': '{count} nouvelles notifications : {titles}',

  'header.prefs': 'Préférences',

  'signin.title': 'Connexion',
  'signin.subtitle': 'Connectez-vous à la passerelle Tocsin de votre cabinet.',
  'signin.server': 'Adresse de la passerelle',
  'signin.server_hint': 'Fournie par votre cabinet, par ex. https://tocsin.cabinet.fr',
  'signin.email': 'Adresse e-mail',
  'signin.password': 'Mot de passe',
  'signin.submit': 'Se connecter',
  'signin.busy': 'Connexion en cours…',
  'signin.session_ended': 'Session terminée : {reason}',
  'signin.missing': 'Veuillez remplir les trois champs.',
  'signin.footer': 'Notifications en temps réel pour les cabinets d’avocats',
  'signin.trust_title': 'Certificat à vérifier',
  'signin.trust_body':
    'Cet ordinateur ne connaît pas le certificat de cette passerelle. C’est normal la première fois pour une passerelle du cabinet à certificat auto-signé.',
  'signin.trust_fingerprint': 'Empreinte SHA-256 présentée :',
  'signin.trust_warning':
    'Comparez-la, caractère par caractère, avec celle que votre informaticien vous a donnée. Si elle diffère, n’allez pas plus loin.',
  'signin.trust_submit': 'Elle correspond : faire confiance',
  'signin.trust_cancel': 'Annuler',

  'error.invalid_url': 'Cette adresse n’est pas une URL valide (par ex. https://tocsin.cabinet.fr).',
  'error.insecure_url':
    'Le http non chiffré n’est autorisé que vers cette machine (localhost). Utilisez une adresse https://.',
  'error.unreachable':
    'Passerelle injoignable. Vérifiez l’adresse et votre connexion au réseau.',
  'error.tls':
    'Connexion sécurisée impossible : le certificat de la passerelle n’a pas été accepté.',
  'error.unauthorized': 'Adresse e-mail ou mot de passe incorrect.',
  'error.untrusted_certificate':
    'Certificat inconnu de cet ordinateur : comparez son empreinte avec celle que votre informaticien vous a donnée.',
  'error.certificate_changed':
    'Le certificat de la passerelle a changé depuis que vous lui avez fait confiance. Ne continuez pas avant que votre informaticien vous confirme la nouvelle empreinte.',
  'error.invalid_fingerprint': 'Empreinte invalide : 64 chiffres hexadécimaux attendus.',
  'error.rate_limited': 'Trop de tentatives. Patientez un instant avant de réessayer.',
  'error.server': 'La passerelle a rencontré une erreur. Réessayez plus tard.',
  'error.protocol': 'La passerelle a répondu de façon inattendue (version incompatible ?).',
  'error.not_signed_in': 'Vous n’êtes pas connecté.',
  'error.invalid_input': 'Valeur refusée.',
  'error.internal': 'Erreur interne de l’application.',
  'error.open_failed': 'Impossible d’ouvrir le lien : aucun logiciel de cette machine ne le prend en charge.',
  'error.no_link': 'Cette notification n’a pas de lien à ouvrir.',
  'error.offline': 'Pas de connexion à la passerelle : réessayez une fois connecté.',
  'error.unknown': 'Erreur inattendue.',

  'prefs.title': 'Préférences',
  'prefs.back': 'Retour',
  'prefs.loading': 'Chargement des préférences…',
  'prefs.load_error': 'Impossible de lire les préférences : {message}',
  'prefs.kinds.title': 'Notifications du bureau',
  'prefs.kinds.hint': 'Ce qui déclenche une notification. Tout reste visible dans ce panneau.',
  'kind.email-received': 'Courriels reçus',
  'kind.dossier-updated': 'Mises à jour de dossiers',
  'kind.deadline-alert': 'Alertes d’échéance',
  'kind.system-notification': 'Avis système',
  'kind.proposal-created': 'Propositions de rendez-vous',
  'kind.proposal-status-changed': 'Réponses aux propositions',
  'kind.conversation-message': 'Messages de conversation',
  'prefs.quiet.title': 'Heures calmes',
  'prefs.quiet.enabled': 'Activer les heures calmes',
  'prefs.quiet.start': 'De',
  'prefs.quiet.end': 'À',
  'prefs.quiet.critical': 'Les notifications critiques passent outre les heures calmes',
  'prefs.quiet.invalid': 'Indiquez une heure de début et une heure de fin.',
  'prefs.general.title': 'Général',
  'prefs.autostart': 'Lancer Tocsin à l’ouverture de session',
  'prefs.language': 'Langue',
  'prefs.language.system': 'Langue du système',
  'prefs.pause.title': 'Mettre en pause',
  'prefs.pause.hint': 'Suspend les notifications ; ce panneau continue de se mettre à jour.',
  'prefs.pause.hour': 'Pendant 1 heure',
  'prefs.pause.tomorrow': 'Jusqu’à demain',
  'prefs.calendar.title': 'Calendrier (ICS)',
  'prefs.calendar.hint':
    'Abonnez votre agenda (Outlook, Thunderbird, téléphone) à vos échéances. Le lien est secret : un nouveau lien désactive le précédent.',
  'prefs.calendar.create': 'Créer un lien',
  'prefs.calendar.rotate': 'Nouveau lien',
  'prefs.calendar.url': 'Adresse du flux',
  'prefs.calendar.copy': 'Copier',
  'prefs.calendar.copied': 'Adresse copiée.',
  'prefs.calendar.copy_failed': 'Copie impossible : sélectionnez l’adresse et copiez-la.',
  'prefs.calendar.off': 'Désactiver',
  'prefs.calendar.created': 'Nouveau lien créé : l’ancien ne fonctionne plus.',
  'prefs.calendar.turned_off': 'Flux de calendrier désactivé.',
  'prefs.calendar.none': 'Aucun flux n’était actif.',
  'prefs.calendar.busy': 'Un instant…',
  'prefs.calendar.error': 'Échec : {message}',
  'prefs.account.title': 'Compte',
  'prefs.sign_out': 'Se déconnecter',
  'prefs.save': 'Enregistrer',
  'prefs.saving': 'Enregistrement…',
  'prefs.saved': 'Préférences enregistrées.',
  'prefs.error': 'Échec de l’enregistrement : {message}',
} as const;

export type Key = keyof typeof fr;
export type Dictionary = Record<Key, string>;

const en: Dictionary = {
  'app.name': 'Tocsin',

  'conn.connected': 'Live — {tenant}',
  'conn.connecting': 'Connecting…',
  'conn.connecting_detail': 'Attempt {attempt}, retrying at {time}',
  'conn.connecting_detail_now': 'Attempt {attempt}',
  'conn.offline': 'Offline since {time}',
  'conn.signed_out': 'Signed out',
  'conn.connected_detail': 'Connected since {time}',

  'offline.title': 'Offline',
  'offline.pending.one': '{count} action waiting to be sent',
  'offline.pending.other': '{count} actions waiting to be sent',
  'offline.hint': 'They will be sent as soon as the connection is back.',
  'notif.problem': 'OS notifications unavailable: {problem}; the badge and this panel still work.',
  'notif.problem_unknown': 'OS notifications unavailable; the badge and this panel still work.',
  'paused.text': 'Notifications paused until {time}',
  'paused.resume': 'Resume',

  'tabs.label': 'Notification categories',
  'tab.emails': 'Emails',
  'tab.dossiers': 'Dossiers',
  'tab.deadlines': 'Deadlines',
  'tab.proposals': 'Proposals',
  'tab.system': 'System',
  'tab.unread_sr': 'unread',
  'tab.ack_sr': 'to acknowledge',

  'list.unread.one': '{count} unread',
  'list.unread.other': '{count} unread',
  'list.all_read': 'All caught up',
  'list.mark_all': 'Mark all as read',
  'list.load_more': 'Show more',
  'list.loading': 'Loading…',
  'list.error': 'Could not load the list: {message}',
  'list.retry': 'Retry',
  'empty.emails': 'No emails',
  'empty.dossiers': 'No dossier updates',
  'empty.deadlines': 'No upcoming deadlines',
  'empty.proposals': 'No appointment proposals',
  'empty.system': 'No system notices',
  'empty.hint': 'New notifications will appear here.',

  'item.unread_sr': 'Unread',
  'item.mark_read': 'Mark as read',
  'item.mark_read_named': 'Mark as read: {title}',
  'item.open': 'Open',
  'item.open_named': 'Open in the firm’s software: {title}',
  'item.dossier_sr': 'Dossier',
  'item.attachments': 'Attachments',

  'urgency.low': 'Low',
  'urgency.normal': 'Normal',
  'urgency.high': 'High',
  'urgency.critical': 'Critical',
  'deadline.urgency.info': 'Info',
  'deadline.urgency.warning': 'Warning',
  'deadline.urgency.urgent': 'Urgent',
  'deadline.urgency.critical': 'Critical',
  'deadline.due_sr': 'Due',
  'deadline.overdue': 'Overdue',
  'deadline.working.today': 'Due today',
  'deadline.working.past': 'Past due',
  'deadline.working.one': '{count} working day left',
  'deadline.working.other': '{count} working days left',
  'deadline.working_sr': 'Working days left',
  'deadline.as_of': 'Working days counted as of {time}',
  'deadline.reminder': 'Reminder {label}',
  'deadline.details': 'Details',
  'deadline.hide_details': 'Hide details',
  'deadline.acks_title': 'Acknowledgements',
  'ack.button': 'Acknowledge',
  'ack.button_named': 'Acknowledge: {title}',
  'ack.sending': 'Sending…',
  'ack.by': 'Acknowledged by {who} at {time}',
  'ack.by_me': 'Acknowledged by you on this device at {time}',
  'ack.pending': 'not yet confirmed',
  'ack.someone': 'a colleague',
  'ack.refused': 'Acknowledgement refused: {message}',
  'escalation.from': '{owner} has not acknowledged this deadline',
  'escalation.anonymous': 'Its owner has not acknowledged this deadline',

  'proposal.by': 'Proposed by {name}',
  'proposal.location': 'Location: {place}',
  'proposal.when_sr': 'Date',
  'proposal.status.pending': 'Awaiting reply',
  'proposal.status.accepted': 'Accepted',
  'proposal.status.rejected': 'Rejected',
  'proposal.status.cancelled': 'Cancelled',
  'proposal.accept': 'Accept',
  'proposal.reject': 'Reject',
  'proposal.accept_named': 'Accept: {title}',
  'proposal.reject_named': 'Reject: {title}',
  'proposal.sending': 'Sending your answer…',
  'proposal.queued': 'Answer waiting for the connection',

  'live.new': 'New: {title}',
  'live.new_many': '{count} new notifications: {titles}',

  'header.prefs': 'Preferences',

  'signin.title': 'Sign in',
  'signin.subtitle': 'Sign in to your firm’s Tocsin gateway.',
  'signin.server': 'Gateway address',
  'signin.server_hint': 'Given by your firm, e.g. https://tocsin.firm.example',
  'signin.email': 'Email address',
  'signin.password': 'Password',
  'signin.submit': 'Sign in',
  'signin.busy': 'Signing in…',
  'signin.session_ended': 'Session ended: {reason}',
  'signin.missing': 'Please fill in all three fields.',
  'signin.footer': 'Real-time notifications for law firms',
  'signin.trust_title': 'Certificate to check',
  'signin.trust_body':
    'This computer does not know this gateway’s certificate. That is expected the first time for a firm gateway with a self-signed certificate.',
  'signin.trust_fingerprint': 'SHA-256 fingerprint presented:',
  'signin.trust_warning':
    'Compare it, character by character, with the one your IT person gave you. If it differs, go no further.',
  'signin.trust_submit': 'It matches: trust it',
  'signin.trust_cancel': 'Cancel',

  'error.invalid_url': 'This address is not a valid URL (e.g. https://tocsin.firm.example).',
  'error.insecure_url':
    'Plain http is only allowed to this machine (localhost). Use an https:// address.',
  'error.unreachable': 'The gateway cannot be reached. Check the address and your network.',
  'error.tls': 'Secure connection failed: the gateway’s certificate was not accepted.',
  'error.unauthorized': 'Wrong email address or password.',
  'error.untrusted_certificate':
    'This computer does not know the gateway’s certificate: compare its fingerprint with the one your IT person gave you.',
  'error.certificate_changed':
    'The gateway’s certificate changed since you trusted it. Do not continue until your IT person confirms the new fingerprint.',
  'error.invalid_fingerprint': 'Invalid fingerprint: 64 hexadecimal digits expected.',
  'error.rate_limited': 'Too many attempts. Wait a moment before trying again.',
  'error.server': 'The gateway ran into an error. Try again later.',
  'error.protocol': 'The gateway answered unexpectedly (incompatible version?).',
  'error.not_signed_in': 'You are not signed in.',
  'error.invalid_input': 'Invalid value.',
  'error.internal': 'Internal application error.',
  'error.open_failed': 'Cannot open the link: no application on this machine handles it.',
  'error.no_link': 'This notification has no link to open.',
  'error.offline': 'Not connected to the gateway: try again once connected.',
  'error.unknown': 'Unexpected error.',

  'prefs.title': 'Preferences',
  'prefs.back': 'Back',
  'prefs.loading': 'Loading preferences…',
  'prefs.load_error': 'Could not read the preferences: {message}',
  'prefs.kinds.title': 'Desktop notifications',
  'prefs.kinds.hint': 'What raises a notification. Everything stays visible in this panel.',
  'kind.email-received': 'Emails received',
  'kind.dossier-updated': 'Dossier updates',
  'kind.deadline-alert': 'Deadline alerts',
  'kind.system-notification': 'System notices',
  'kind.proposal-created': 'Appointment proposals',
  'kind.proposal-status-changed': 'Answers to proposals',
  'kind.conversation-message': 'Conversation messages',
  'prefs.quiet.title': 'Quiet hours',
  'prefs.quiet.enabled': 'Enable quiet hours',
  'prefs.quiet.start': 'From',
  'prefs.quiet.end': 'Until',
  'prefs.quiet.critical': 'Critical notifications break through quiet hours',
  'prefs.quiet.invalid': 'Enter a start time and an end time.',
  'prefs.general.title': 'General',
  'prefs.autostart': 'Start Tocsin at login',
  'prefs.language': 'Language',
  'prefs.language.system': 'System language',
  'prefs.pause.title': 'Pause',
  'prefs.pause.hint': 'Silences notifications; this panel keeps updating.',
  'prefs.pause.hour': 'For 1 hour',
  'prefs.pause.tomorrow': 'Until tomorrow',
  'prefs.calendar.title': 'Calendar (ICS)',
  'prefs.calendar.hint':
    'Subscribe your calendar app (Outlook, Thunderbird, phone) to your deadlines. The link is secret: a new link turns the previous one off.',
  'prefs.calendar.create': 'Create a link',
  'prefs.calendar.rotate': 'New link',
  'prefs.calendar.url': 'Feed address',
  'prefs.calendar.copy': 'Copy',
  'prefs.calendar.copied': 'Address copied.',
  'prefs.calendar.copy_failed': 'Could not copy: select the address and copy it.',
  'prefs.calendar.off': 'Turn off',
  'prefs.calendar.created': 'New link made: the previous one no longer works.',
  'prefs.calendar.turned_off': 'Calendar feed turned off.',
  'prefs.calendar.none': 'No feed was on.',
  'prefs.calendar.busy': 'One moment…',
  'prefs.calendar.error': 'Failed: {message}',
  'prefs.account.title': 'Account',
  'prefs.sign_out': 'Sign out',
  'prefs.save': 'Save',
  'prefs.saving': 'Saving…',
  'prefs.saved': 'Preferences saved.',
  'prefs.error': 'Could not save: {message}',
};

export const dictionaries: Record<Locale, Dictionary> = { fr, en };

export type Params = Record<string, string | number>;

/** Replaces each {name} by params.name; unknown names are left as they are. */
export function interpolate(template: string, params: Params = {}): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function translate(locale: Locale, key: Key, params?: Params): string {
  const template = dictionaries[locale][key] ?? dictionaries.fr[key] ?? key;
  return interpolate(template, params);
}

/** Whether a key computed at run time (e.g. from a wire value) exists. */
export function isKey(key: string): key is Key {
  return key in fr;
}

/** The bases of the keys that have plural forms ("offline.pending" for ".one"/".other"). */
type PluralBaseOf<K> = K extends `${infer B}.other` ? B : never;
export type PluralBase = PluralBaseOf<Key>;

/** The plural form for count ({count} is interpolated), by Intl.PluralRules. */
export function plural(locale: Locale, base: PluralBase, count: number, params: Params = {}): string {
  const category = new Intl.PluralRules(locale).select(count);
  const candidate = `${base}.${category}`;
  const key: Key = isKey(candidate) ? candidate : (`${base}.other` as Key);
  return translate(locale, key, { count, ...params });
}

/** The panel's language before the first snapshot: French for a French browser, else English. */
export function detectLocale(language: string | undefined): Locale {
  return language?.toLowerCase().startsWith('fr') ? 'fr' : 'en';
}
