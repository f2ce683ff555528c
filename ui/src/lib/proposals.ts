// The Accept / Reject buttons' state per proposal: busy from the click until the
// matching `action-result` event (matched by proposal_id), then the refusal's message
// if the gateway refused (e.g. the proposal was answered elsewhere). A pure reducer.

import type { ActionResult, AppError, ProposalResponse } from './ipc';

export interface ProposalUi {
  busy: boolean;
  response: ProposalResponse | null;
  error: string | null;
}

export type ProposalsUi = Readonly<Record<string, ProposalUi>>;

export type ProposalEvent =
  | { type: 'clicked'; proposal_id: string; response: ProposalResponse }
  | { type: 'result'; result: ActionResult }
  /** The command itself was rejected (not signed in, …): no action-result will follow. */
  | { type: 'failed'; proposal_id: string; error: AppError };

const IDLE: ProposalUi = { busy: false, response: null, error: null };

export function proposalUi(state: ProposalsUi, proposalId: string): ProposalUi {
  return state[proposalId] ?? IDLE;
}

function settle(entry: ProposalUi, result: ActionResult): ProposalUi {
  return {
    busy: false,
    response: entry.response,
    error: result.ok ? null : (result.error?.message || result.error?.code || null),
  };
}

export function reduceProposals(state: ProposalsUi, event: ProposalEvent): ProposalsUi {
  switch (event.type) {
    case 'clicked':
      return { ...state, [event.proposal_id]: { busy: true, response: event.response, error: null } };
    case 'failed':
      return {
        ...state,
        [event.proposal_id]: { busy: false, response: null, error: event.error.message || event.error.code },
      };
    case 'result': {
      const { result } = event;
      if (result.proposal_id !== null) {
        const entry = state[result.proposal_id];
        // A result for a proposal answered from elsewhere (tray, another window) still
        // shows its refusal here; a success for one we never touched changes nothing.
        if (!entry && result.ok) return state;
        return { ...state, [result.proposal_id]: settle(entry ?? IDLE, result) };
      }
      // No id: the answer cannot be matched, so it settles every proposal still waiting.
      const next: Record<string, ProposalUi> = { ...state };
      let changed = false;
      for (const [id, entry] of Object.entries(state)) {
        if (entry.busy) {
          next[id] = settle(entry, result);
          changed = true;
        }
      }
      return changed ? next : state;
    }
  }
}
