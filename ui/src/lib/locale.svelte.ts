// The current language and a display clock as reactive state, with `t`/`tn` bound to
// them so templates re-render when the snapshot's locale changes or a minute passes.

import { detectLocale, plural, translate, type Key, type Params, type PluralBase } from './i18n';
import type { Locale } from './ipc';

export const ui = $state({
  locale: detectLocale(typeof navigator === 'undefined' ? undefined : navigator.language) as Locale,
  /** Display clock for relative times; ticks once a minute. */
  now: new Date(),
});

export function setLocale(locale: Locale): void {
  if (ui.locale !== locale) ui.locale = locale;
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

export function t(key: Key, params?: Params): string {
  return translate(ui.locale, key, params);
}

export function tn(base: PluralBase, count: number, params?: Params): string {
  return plural(ui.locale, base, count, params);
}

let ticking = false;

/** Starts the once-a-minute display clock (idempotent). */
export function startClock(): void {
  if (ticking) return;
  ticking = true;
  setInterval(() => (ui.now = new Date()), 60_000);
}
