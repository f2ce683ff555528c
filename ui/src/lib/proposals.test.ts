import { describe, expect, it } from 'vitest';
import { proposalUi, reduceProposals, type ProposalsUi } from './proposals';

const refusal = { code: 'conflict', message: 'Déjà traitée depuis un autre appareil.' };

describe('reduceProposals', () => {
  it('a click makes that proposal busy, remembering the answer', () => {
    const s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    expect(proposalUi(s, 'p1')).toEqual({ busy: true, response: 'accept', error: null });
    expect(proposalUi(s, 'p2').busy).toBe(false);
  });

  it('stays busy until the action-result with the same proposal_id', () => {
    let s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p2', ok: true, error: null } });
    expect(proposalUi(s, 'p1').busy).toBe(true);
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p1', ok: true, error: null } });
    expect(proposalUi(s, 'p1')).toEqual({ busy: false, response: 'accept', error: null });
  });

  it('a refusal releases the buttons and keeps the message', () => {
    let s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'reject' });
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p1', ok: false, error: refusal } });
    expect(proposalUi(s, 'p1')).toEqual({ busy: false, response: 'reject', error: refusal.message });
  });

  it('a new click clears the previous error', () => {
    let s = reduceProposals({}, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p1', ok: false, error: refusal } });
    expect(proposalUi(s, 'p1').error).toBe(refusal.message);
    s = reduceProposals(s, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    expect(proposalUi(s, 'p1').error).toBeNull();
  });

  it('a refusal without a message falls back to its code', () => {
    let s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p1', ok: false, error: { code: 'gone', message: '' } } });
    expect(proposalUi(s, 'p1').error).toBe('gone');
  });

  it('a rejected command (no action-result will come) releases with its error', () => {
    let s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    s = reduceProposals(s, { type: 'failed', proposal_id: 'p1', error: { code: 'not_signed_in', message: 'Non connecté.' } });
    expect(proposalUi(s, 'p1')).toEqual({ busy: false, response: null, error: 'Non connecté.' });
  });

  it('a success for a proposal never touched here changes nothing', () => {
    const s: ProposalsUi = {};
    expect(reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p9', ok: true, error: null } })).toBe(s);
  });

  it('a refusal for a proposal never touched here is still shown', () => {
    const s = reduceProposals({}, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p9', ok: false, error: refusal } });
    expect(proposalUi(s, 'p9').error).toBe(refusal.message);
  });

  it('a result without proposal_id settles every busy proposal and only those', () => {
    let s = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    s = reduceProposals(s, { type: 'clicked', proposal_id: 'p2', response: 'reject' });
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p2', ok: true, error: null } });
    s = reduceProposals(s, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: null, ok: false, error: refusal } });
    expect(proposalUi(s, 'p1')).toEqual({ busy: false, response: 'accept', error: refusal.message });
    expect(proposalUi(s, 'p2').error).toBeNull();
  });

  it('never mutates the previous state', () => {
    const s0 = reduceProposals({}, { type: 'clicked', proposal_id: 'p1', response: 'accept' });
    const frozen = JSON.stringify(s0);
    reduceProposals(s0, { type: 'result', result: { action: 'proposal', deadline_ids: [], proposal_id: 'p1', ok: true, error: null } });
    expect(JSON.stringify(s0)).toBe(frozen);
  });
});
