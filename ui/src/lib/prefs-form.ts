// The preferences form's model and its conversions to and from the contract's
// Preferences (every kind explicit; quiet hours null when off, times kept while off).

import { KINDS, type KnownKind, type LanguagePref, type Preferences } from './ipc';

export interface PrefsForm {
  kinds: Record<KnownKind, boolean>;
  quietEnabled: boolean;
  quietStart: string;
  quietEnd: string;
  criticalBreaks: boolean;
  autostart: boolean;
  language: LanguagePref;
}

export const DEFAULT_QUIET = { start: '22:00', end: '07:00' } as const;

export function formFromPrefs(p: Preferences): PrefsForm {
  const kinds = Object.fromEntries(KINDS.map((k) => [k, p.enabled_kinds[k] !== false])) as Record<KnownKind, boolean>;
  return {
    kinds,
    quietEnabled: p.quiet_hours !== null,
    quietStart: p.quiet_hours?.start ?? DEFAULT_QUIET.start,
    quietEnd: p.quiet_hours?.end ?? DEFAULT_QUIET.end,
    criticalBreaks: p.critical_breaks_through_quiet_hours,
    autostart: p.autostart,
    language: p.language,
  };
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** "7:05" or "07:05:00" (some time inputs add seconds) → "07:05"; null if not a time. */
export function normalizeTime(value: string): string | null {
  const m = /^(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?$/.exec(value.trim());
  if (!m) return null;
  const hhmm = `${m[1].padStart(2, '0')}:${m[2]}`;
  return HHMM.test(hhmm) ? hhmm : null;
}

/** The Preferences to save, or null when quiet hours are on without two valid times. */
export function prefsFromForm(f: PrefsForm): Preferences | null {
  let quiet: Preferences['quiet_hours'] = null;
  if (f.quietEnabled) {
    const start = normalizeTime(f.quietStart);
    const end = normalizeTime(f.quietEnd);
    if (!start || !end) return null;
    quiet = { start, end };
  }
  return {
    enabled_kinds: { ...f.kinds },
    quiet_hours: quiet,
    critical_breaks_through_quiet_hours: f.criticalBreaks,
    autostart: f.autostart,
    language: f.language,
  };
}
