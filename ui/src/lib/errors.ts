// An AppError as the user reads it: the panel's own words for the codes it knows
// (in the current language), with the shell's technical detail kept beneath.

import type { AppError, Locale } from './ipc';
import { isKey, translate } from './i18n';

export interface ErrorText {
  code: string;
  text: string;
  /** The technical cause from the shell's message, when it gives one. */
  detail: string | null;
}

export function errorText(locale: Locale, error: AppError): ErrorText {
  const key = `error.${error.code}`;
  const message = error.message?.trim() || '';
  if (isKey(key)) {
    const text = translate(locale, key);
    return { code: error.code, text, detail: technicalCause(message) };
  }
  return { code: error.code, text: message || translate(locale, 'error.unknown'), detail: null };
}

/**
 * The shell words its errors "<sentence> (<technical cause>)" (src-tauri/src/error.rs):
 * beside the panel's own sentence only the cause is worth showing; null if none.
 */
export function technicalCause(message: string): string | null {
  const text = message.trim();
  if (!text.endsWith(')')) return null;
  let depth = 0;
  for (let i = text.length - 1; i >= 0; i--) {
    if (text[i] === ')') depth++;
    else if (text[i] === '(' && --depth === 0) {
      const inner = text.slice(i + 1, -1).trim();
      return i > 0 && inner ? inner : null;
    }
  }
  return null;
}
