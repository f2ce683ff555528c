/**
 * The bell's look: its own shadow-DOM styles, themable from the page through CSS
 * custom properties (`--tocsin-accent`, `--tocsin-bg`, `--tocsin-fg`, …) and `::part()`.
 */

export const STYLE = `
:host { position: relative; display: inline-block; font: 14px/1.4 system-ui, sans-serif; color: var(--tocsin-fg, #1b1f24); }
.bell { position: relative; width: 40px; height: 40px; border: 0; border-radius: 50%; background: transparent; color: inherit; cursor: pointer; }
.bell:hover { background: rgba(0,0,0,.06); }
.bell:focus-visible, button:focus-visible, a:focus-visible, [role=tab]:focus-visible { outline: 2px solid var(--tocsin-accent, #1d4ed8); outline-offset: 2px; }
.bell svg { width: 22px; height: 22px; }
.badge { position: absolute; top: 2px; right: 0; min-width: 18px; height: 18px; padding: 0 5px; box-sizing: border-box; border-radius: 9px; background: var(--tocsin-badge, #c62828); color: #fff; font-size: 11px; font-weight: 700; line-height: 18px; text-align: center; }
.badge[hidden] { display: none; }
.dot { position: absolute; bottom: 6px; right: 6px; width: 8px; height: 8px; border-radius: 50%; border: 2px solid var(--tocsin-bg, #fff); background: #9aa1a9; }
.dot[data-status=connected] { background: #2e7d32; }
.dot[data-status=connecting], .dot[data-status=offline] { background: #ed8b00; }
.dot[data-status=stopped] { background: #c62828; }
.panel { position: absolute; right: 0; top: 44px; z-index: 1000; width: min(440px, 94vw); max-height: 70vh; display: flex; flex-direction: column; background: var(--tocsin-bg, #fff); border: 1px solid rgba(0,0,0,.12); border-radius: 10px; box-shadow: 0 8px 28px rgba(0,0,0,.18); overflow: hidden; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 8px; padding: 10px 12px; border-bottom: 1px solid rgba(0,0,0,.08); }
header .status { flex: 1; font-size: 12px; color: var(--tocsin-muted, #57606a); }
header button, .toolbar button, .item button, .item a, .note button { border: 1px solid rgba(0,0,0,.15); background: transparent; color: inherit; border-radius: 6px; padding: 2px 8px; font: inherit; font-size: 12px; cursor: pointer; }
.note { margin: 0; padding: 8px 12px; font-size: 12px; background: rgba(237,139,0,.1); }
[role=tablist] { display: flex; overflow-x: auto; scrollbar-width: none; border-bottom: 1px solid rgba(0,0,0,.08); }
[role=tab] { flex: 1 0 auto; border: 0; border-bottom: 2px solid transparent; background: transparent; padding: 8px 5px; font: inherit; font-size: 12px; color: inherit; cursor: pointer; white-space: nowrap; }
[role=tab][aria-selected=true] { border-bottom-color: var(--tocsin-accent, #1d4ed8); font-weight: 600; }
[role=tab] .count { margin-left: 4px; padding: 0 5px; border-radius: 8px; background: rgba(0,0,0,.08); font-size: 11px; }
[role=tabpanel] { overflow-y: auto; }
.toolbar { display: flex; justify-content: space-between; align-items: center; padding: 6px 12px; font-size: 12px; color: var(--tocsin-muted, #57606a); }
ul { list-style: none; margin: 0; padding: 0; }
.item { padding: 10px 12px; border-top: 1px solid rgba(0,0,0,.06); }
.item.unread { background: rgba(29,78,216,.05); }
.item.unread .title::before { content: ""; display: inline-block; width: 7px; height: 7px; margin-right: 6px; border-radius: 50%; background: var(--tocsin-accent, #1d4ed8); vertical-align: middle; }
.item.critical { border-left: 3px solid #c62828; }
.title { font-weight: 600; }
.body { margin-top: 2px; color: var(--tocsin-muted, #57606a); white-space: pre-line; }
.meta { display: flex; gap: 8px; align-items: center; margin-top: 6px; font-size: 12px; color: var(--tocsin-muted, #57606a); }
.meta .actions { margin-left: auto; display: flex; gap: 6px; }
.item a { text-decoration: none; }
.empty { padding: 24px 12px; text-align: center; color: var(--tocsin-muted, #57606a); }
.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); border: 0; }
`;
