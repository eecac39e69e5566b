/**
 * The Portability Report webview: the server's `ebpfPortability/report` (one row per program, the
 * programs × target kernels grid) as HTML in the editor's theme colours, with a legend, keyboard
 * navigation of the grid (arrow keys, Home/End; each cell says its program, kernel and outcome),
 * a strict Content-Security-Policy (no remote resources; a nonce for the one style and script)
 * and an "Export as Markdown" button. The HTML is built here from plain data, escaped; the
 * webview only posts `export` and `reveal` messages back.
 */
import { randomBytes } from 'node:crypto';

/** What the server answers (server/src/lsp/server.ts `ReportResult`), the fields shown here. */
export interface ReportData {
  readonly uri: string;
  readonly target: string;
  readonly targetKernels: number;
  readonly markdown: string;
  readonly programs: readonly {
    readonly file: string;
    readonly function: string;
    readonly sec: string;
    readonly progType?: string;
    readonly minKernel: Record<string, { version: string | null; all: boolean }>;
    readonly floor?: string;
    readonly uses: readonly { kind: string; name: string; since: string }[];
    readonly configs: readonly string[];
    readonly failsOn: readonly string[];
    readonly failsOnSummary: string;
    readonly targetKernels: number;
  }[];
  readonly kernels: readonly { name: string; version: string; arch: string; distro: string }[];
  readonly grid: readonly {
    readonly function: string;
    readonly line: number;
    readonly sec: string;
    readonly outcomes: readonly Outcome[];
    readonly rules: readonly (readonly string[])[];
    readonly configsOff: readonly string[];
  }[];
}
type Outcome = 'loads' | 'fails' | 'attach-fails' | 'unknown';

/** How each outcome is shown: a symbol (so colour is never the only cue), a word and a theme colour. */
const OUTCOMES: Record<Outcome, { symbol: string; label: string; colour: string }> = {
  loads: { symbol: '✓', label: 'loads', colour: 'var(--vscode-testing-iconPassed, var(--vscode-charts-green))' },
  fails: { symbol: '✗', label: 'fails to load', colour: 'var(--vscode-testing-iconFailed, var(--vscode-charts-red))' },
  'attach-fails': {
    symbol: '!',
    label: 'loads, attach fails',
    colour: 'var(--vscode-editorWarning-foreground, var(--vscode-charts-orange))',
  },
  unknown: { symbol: '?', label: 'unknown (no kernel config)', colour: 'var(--vscode-disabledForeground, var(--vscode-charts-gray))' },
};

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The minimum-kernel cell of an architecture, as the CLI's Markdown words it. */
const minCell = (m: { version: string | null; all: boolean } | undefined) =>
  !m ? '' : m.version === null ? 'none' : m.all ? `${m.version} (all targets)` : `≥ ${m.version}`;

/**
 * A webview page: `body` under a Content-Security-Policy that allows nothing remote, only this
 * page's one style and one script (by nonce) and images of the webview itself.
 */
export function webviewPage(title: string, cspSource: string, style: string, body: string, script = ''): string {
  const nonce = randomBytes(16).toString('base64');
  const csp = `default-src 'none'; img-src ${cspSource}; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';`;
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style nonce="${nonce}">${style}</style></head><body>
${body}
${script ? `<script nonce="${nonce}">${script}</script>` : ''}
</body></html>`;
}

/** The webview's HTML for a report (or a message when there is none); `cspSource` is the webview's. */
export function reportHtml(r: ReportData | null, title: string, cspSource: string, focus?: string): string {
  if (!r)
    return webviewPage(
      title,
      cspSource,
      STYLE,
      `<h1>${esc(title)}</h1><p class="empty">No report: open a BPF C program (a <code>*.bpf.c</code>, or C with <code>SEC()</code>) and run the command again.</p>`,
    );
  const arches = [...new Set(r.kernels.map((k) => k.arch))].sort();
  const rows = r.programs
    .map((p) => {
      const setters = p.uses.filter((u) => p.floor && u.since.startsWith(p.floor)).map((u) => u.name);
      return `<tr${p.function === focus ? ' class="focus"' : ''}><td>${esc(p.file)}</td><td><code>${esc(p.function)}</code></td><td><code>${esc(p.sec)}</code></td><td>${esc(
        p.progType?.replace(/^BPF_PROG_TYPE_/, '').toLowerCase() ?? 'unknown',
      )}</td>${arches.map((a) => `<td>${esc(minCell(p.minKernel[a]))}</td>`).join('')}<td>${esc(
        p.floor ? `${p.floor}: ${setters.join(', ')}` : '',
      )}</td><td>${esc(p.configs.join(', '))}</td><td>${esc(
        p.failsOn.length ? `${p.failsOn.length}/${p.targetKernels}: ${p.failsOnSummary}` : 'none',
      )}</td></tr>`;
    })
    .join('\n');
  const table = `<table class="programs"><caption>Programs</caption><thead><tr><th scope="col">File</th><th scope="col">Function</th><th scope="col">SEC</th><th scope="col">Program type</th>${arches
    .map((a) => `<th scope="col">Min kernel (${esc(a)})</th>`)
    .join(
      '',
    )}<th scope="col">Floor (facts)</th><th scope="col">CONFIG</th><th scope="col">Fails on</th></tr></thead><tbody>${rows}</tbody></table>`;
  const legend = `<ul class="legend" aria-label="Legend">${(Object.keys(OUTCOMES) as Outcome[])
    .map((o) => `<li><span class="cell ${o}" aria-hidden="true">${OUTCOMES[o].symbol}</span> ${esc(OUTCOMES[o].label)}</li>`)
    .join('')}</ul>`;
  const kernelHead = r.kernels
    .map(
      (k) =>
        `<th scope="col" class="k" title="${esc(`${k.name} (${k.arch}, ${k.distro})`)}"><span>${esc(k.version.split('.').slice(0, 2).join('.'))}</span></th>`,
    )
    .join('');
  let first = true;
  const gridRows = r.grid
    .map((g, row) => {
      const cells = g.outcomes
        .map((o, col) => {
          const k = r.kernels[col];
          const why = g.rules[col]?.length ? ` (${g.rules[col].join(', ')})` : '';
          const label = `${g.function} on ${k.name}: ${OUTCOMES[o].label}${why}`;
          const tab = first ? '0' : '-1';
          first = false;
          return `<td role="gridcell" tabindex="${tab}" class="cell ${o}" data-row="${row}" data-col="${col}" title="${esc(label)}" aria-label="${esc(label)}">${OUTCOMES[o].symbol}</td>`;
        })
        .join('');
      const loads = g.outcomes.filter((o) => o === 'loads').length;
      return `<tr role="row"${g.function === focus ? ' class="focus"' : ''}><th scope="row" role="rowheader"><a href="#" data-line="${g.line}">${esc(g.function)}</a><div class="sub">${loads}/${g.outcomes.length} load</div></th>${cells}</tr>`;
    })
    .join('\n');
  const archRow = arches
    .map((a) => `<th scope="colgroup" colspan="${r.kernels.filter((k) => k.arch === a).length}">${esc(a)}</th>`)
    .join('');
  const grid = `<div class="scroll"><table class="grid" role="grid" aria-label="Programs by target kernel" aria-describedby="legend-note"><thead><tr><td></td>${archRow}</tr><tr><th scope="col">Program</th>${kernelHead}</tr></thead><tbody>${gridRows}</tbody></table></div>`;
  return webviewPage(
    title,
    cspSource,
    STYLE,
    `<header><h1>${esc(title)}</h1>
<p>Target <strong>${esc(r.target)}</strong>: ${r.targetKernels} kernel${r.targetKernels === 1 ? '' : 's'}. The same findings as the diagnostics; refreshed as the file changes.</p>
<button id="export" type="button">Export as Markdown</button></header>
${table}
<h2>Programs × target kernels</h2>
<p id="legend-note" class="sub">Arrow keys move between cells; each cell names its program, kernel and outcome. Enter on a program opens its SEC() line.</p>
${legend}
${grid}
<p id="status" class="sub" aria-live="polite"></p>`,
    SCRIPT,
  );
}

export const STYLE = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); background: var(--vscode-editor-background); padding: 0 16px 16px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
code { font-family: var(--vscode-editor-font-family); }
table { border-collapse: collapse; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
.programs th, .programs td { border: 1px solid var(--vscode-panel-border, var(--vscode-editorWidget-border)); padding: 3px 6px; text-align: left; vertical-align: top; }
tr.focus > * { background: var(--vscode-editor-selectionHighlightBackground); }
.sub { color: var(--vscode-descriptionForeground); font-size: 0.9em; }
.legend { list-style: none; padding: 0; display: flex; gap: 16px; flex-wrap: wrap; }
.legend li { display: flex; align-items: center; gap: 6px; }
.scroll { overflow-x: auto; }
.grid th { font-weight: normal; padding: 2px; }
.grid th[scope=row] { text-align: left; padding-right: 8px; white-space: nowrap; }
.grid th.k span { writing-mode: vertical-rl; transform: rotate(180deg); font-size: 0.8em; }
.cell { width: 14px; height: 16px; min-width: 14px; text-align: center; font-size: 11px; font-weight: bold; color: var(--vscode-editor-background); border: 1px solid var(--vscode-editor-background); display: table-cell; }
span.cell { display: inline-block; line-height: 16px; }
.cell.loads { background: ${OUTCOMES.loads.colour}; }
.cell.fails { background: ${OUTCOMES.fails.colour}; }
.cell.attach-fails { background: ${OUTCOMES['attach-fails'].colour}; }
.cell.unknown { background: ${OUTCOMES.unknown.colour}; }
.cell:focus { outline: 2px solid var(--vscode-focusBorder); outline-offset: 0; }
a { color: var(--vscode-textLink-foreground); }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 12px; cursor: pointer; }
button:hover { background: var(--vscode-button-hoverBackground); }
button:focus { outline: 1px solid var(--vscode-focusBorder); outline-offset: 2px; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
document.getElementById('export')?.addEventListener('click', () => vscode.postMessage({ type: 'export' }));
for (const a of document.querySelectorAll('a[data-line]')) a.addEventListener('click', (e) => { e.preventDefault(); vscode.postMessage({ type: 'reveal', line: Number(a.dataset.line) }); });
const status = document.getElementById('status');
const cell = (r, c) => document.querySelector('td[data-row="' + r + '"][data-col="' + c + '"]');
document.querySelector('table.grid')?.addEventListener('keydown', (e) => {
  const t = e.target;
  if (!t.dataset || t.dataset.row === undefined) return;
  let r = Number(t.dataset.row), c = Number(t.dataset.col);
  if (e.key === 'ArrowRight') c++; else if (e.key === 'ArrowLeft') c--; else if (e.key === 'ArrowDown') r++; else if (e.key === 'ArrowUp') r--;
  else if (e.key === 'Home') c = 0; else if (e.key === 'End') c = t.parentElement.querySelectorAll('td[data-col]').length - 1;
  else if (e.key === 'Enter') { t.parentElement.querySelector('a[data-line]')?.click(); return; }
  else return;
  const next = cell(r, c);
  if (!next) return;
  e.preventDefault();
  t.tabIndex = -1; next.tabIndex = 0; next.focus();
  if (status) status.textContent = next.getAttribute('aria-label');
});
`;
