import { describe, expect, it } from 'vitest';
import { detectLocale, dictionaries, interpolate, isKey, plural, translate, type Key } from './i18n';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('dictionaries', () => {
  it('French and English have exactly the same keys', () => {
    const fr = Object.keys(dictionaries.fr).sort();
    const en = Object.keys(dictionaries.en).sort();
    expect(en).toEqual(fr);
    expect(fr.length).toBeGreaterThan(100);
  });

  it('no entry is empty', () => {
    for (const [locale, dict] of Object.entries(dictionaries)) {
      for (const [key, value] of Object.entries(dict)) {
        expect(value.trim(), `${locale}:${key}`).not.toBe('');
      }
    }
  });

  it('each key uses the same placeholders in both languages', () => {
    for (const key of Object.keys(dictionaries.fr) as Key[]) {
      expect(placeholders(dictionaries.en[key]), key).toEqual(placeholders(dictionaries.fr[key]));
    }
  });

  it('has a word for every sign-in error code of the contract', () => {
    for (const code of [
      'invalid_url',
      'insecure_url',
      'unreachable',
      'tls',
      'untrusted_certificate',
      'certificate_changed',
      'invalid_fingerprint',
      'unauthorized',
      'rate_limited',
      'server',
      'protocol',
    ]) {
      expect(isKey(`error.${code}`), code).toBe(true);
    }
  });
});

describe('interpolate', () => {
  it('replaces every occurrence of each name', () => {
    expect(interpolate('{a} et {b}, encore {a}', { a: 'x', b: 2 })).toBe('x et 2, encore x');
  });
  it('leaves unknown names as they are', () => {
    expect(interpolate('Bonjour {name}', {})).toBe('Bonjour {name}');
  });
});

describe('translate', () => {
  it('uses the locale and the params', () => {
    expect(translate('fr', 'conn.connected', { tenant: 'Cabinet Dupont' })).toBe('En direct — Cabinet Dupont');
    expect(translate('en', 'conn.connected', { tenant: 'Cabinet Dupont' })).toBe('Live — Cabinet Dupont');
    expect(translate('fr', 'tab.deadlines')).toBe('Échéances');
    expect(translate('en', 'tab.proposals')).toBe('Proposals');
  });
});

describe('plural', () => {
  it('French treats 0 and 1 as singular', () => {
    expect(plural('fr', 'offline.pending', 0)).toBe('0 action en attente d’envoi');
    expect(plural('fr', 'offline.pending', 1)).toBe('1 action en attente d’envoi');
    expect(plural('fr', 'offline.pending', 3)).toBe('3 actions en attente d’envoi');
  });
  it('English treats only 1 as singular', () => {
    expect(plural('en', 'offline.pending', 0)).toBe('0 actions waiting to be sent');
    expect(plural('en', 'offline.pending', 1)).toBe('1 action waiting to be sent');
    expect(plural('en', 'offline.pending', 12)).toBe('12 actions waiting to be sent');
  });
});

describe('detectLocale', () => {
  it('is French for any French variant, English otherwise', () => {
    expect(detectLocale('fr-FR')).toBe('fr');
    expect(detectLocale('fr-CA')).toBe('fr');
    expect(detectLocale('en-GB')).toBe('en');
    expect(detectLocale('de-DE')).toBe('en');
    expect(detectLocale(undefined)).toBe('en');
  });
});
