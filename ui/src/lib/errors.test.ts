import { describe, expect, it } from 'vitest';
import { errorText, technicalCause } from './errors';

describe('errorText', () => {
  it('uses the panel words for a known code, in the current language', () => {
    expect(errorText('fr', { code: 'unauthorized', message: '' }).text).toBe('Adresse e-mail ou mot de passe incorrect.');
    expect(errorText('en', { code: 'unauthorized', message: '' }).text).toBe('Wrong email address or password.');
    expect(errorText('en', { code: 'insecure_url', message: '' }).text).toContain('Plain http is only allowed to this machine');
  });
  it("drops the shell's own sentence when it carries no technical cause", () => {
    const e = errorText('fr', { code: 'unauthorized', message: 'Identifiants refusés.' });
    expect(e).toEqual({ code: 'unauthorized', text: 'Adresse e-mail ou mot de passe incorrect.', detail: null });
  });
  it('keeps only the technical cause when the shell says "<sentence> (<cause>)"', () => {
    const e = errorText('fr', { code: 'unreachable', message: 'Passerelle injoignable (connection refused (os error 111))' });
    expect(e.detail).toBe('connection refused (os error 111)');
    const f = errorText('en', { code: 'unreachable', message: 'Gateway unreachable (dns error: no such host)' });
    expect(f.detail).toBe('dns error: no such host');
    const tls = errorText('fr', { code: 'tls', message: 'Échec TLS (invalid peer certificate: Expired)' });
    expect(tls.text).toContain('certificat');
    expect(tls.detail).toBe('invalid peer certificate: Expired');
    expect(technicalCause('(only parens)')).toBeNull();
    expect(technicalCause('unbalanced)')).toBeNull();
    expect(technicalCause('no cause')).toBeNull();
  });
  it('an unknown code shows the shell message as is', () => {
    expect(errorText('fr', { code: 'weird', message: 'Quelque chose' })).toEqual({ code: 'weird', text: 'Quelque chose', detail: null });
    expect(errorText('en', { code: 'weird', message: '' }).text).toBe('Unexpected error.');
  });
});
