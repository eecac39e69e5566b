/**
 * Check This Machine's page: the server's `ebpfPortability/doctor` answer (the checks of
 * `ebpf-portability doctor`) as a table with a symbol per status, what to do for each problem, the
 * CONFIG options the facts name, and an "Add this machine's kernel" button when the running
 * kernel's BTF is there and not imported yet (it posts `import`).
 */
import { esc, STYLE, webviewPage } from './report';

/** What the server answers (server/src/lsp/machine.ts `DoctorResult`). */
export interface MachineData {
  readonly report: {
    readonly release?: string;
    readonly distro?: { id: string; name?: string };
    readonly items: readonly { what: string; value: string; status: 'ok' | 'missing' | 'note'; advice?: string }[];
    readonly configSource?: string;
    readonly configs: readonly { name: string; value: string; purpose?: string }[];
  };
  readonly btf: string | null;
  readonly name: string;
  readonly imported: boolean;
}

const STATUS = { ok: '✓ ok', missing: '✗ missing', note: '! note' } as const;

export function machineHtml(m: MachineData, cspSource: string): string {
  const r = m.report;
  const items = r.items
    .map(
      (i) =>
        `<tr><th scope="row">${esc(i.what)}</th><td class="st ${i.status}">${STATUS[i.status]}</td><td>${esc(i.value)}</td><td>${esc(
          i.status === 'ok' ? '' : (i.advice ?? ''),
        )}</td></tr>`,
    )
    .join('\n');
  const action = !m.btf
    ? '<p class="sub">No BTF at /sys/kernel/btf/vmlinux: this kernel cannot be added as a target.</p>'
    : m.imported
      ? `<p>This machine's kernel is imported as <code>${esc(m.name)}</code>; name it (or <code>user</code>) in the target kernels.</p>`
      : `<p><button id="import" type="button">Add this machine's kernel</button> <span class="sub">imports ${esc(m.btf)} as <code>${esc(
          m.name,
        )}</code> (as <code>ebpf-portability db add</code> does) and adds it to the target kernels.</span></p>`;
  const configs = r.configSource
    ? `<h2>CONFIG options the facts name</h2><p class="sub">From ${esc(r.configSource)}.</p><table class="programs"><thead><tr><th scope="col">Option</th><th scope="col">Value</th><th scope="col">Purpose</th></tr></thead><tbody>${r.configs
        .map(
          (c) =>
            `<tr><td><code>${esc(c.name)}</code></td><td>${esc(c.value)}</td><td>${esc((c.purpose ?? '').split(/(?<=\.)\s/)[0])}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '';
  const missing = r.items.filter((i) => i.status === 'missing').length;
  const body = `<h1>This machine</h1>
<p>Kernel ${esc(r.release ?? 'unknown')}${r.distro ? ` on ${esc(r.distro.name ?? r.distro.id)}` : ''}: ${
    missing ? `<strong>${missing} missing</strong>` : 'nothing missing'
  }. Read from files only, as <code>ebpf-portability doctor</code> does.</p>
${action}
<table class="programs"><caption>Checks</caption><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Value</th><th scope="col">What to do</th></tr></thead><tbody>${items}</tbody></table>
${configs}`;
  const style = `${STYLE}
.st.ok { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
.st.missing { color: var(--vscode-testing-iconFailed, var(--vscode-charts-red)); font-weight: bold; }
.st.note { color: var(--vscode-editorWarning-foreground, var(--vscode-charts-orange)); }`;
  const script = `const vscode = acquireVsCodeApi();
document.getElementById('import')?.addEventListener('click', () => vscode.postMessage({ type: 'import' }));`;
  return webviewPage('Check This Machine', cspSource, style, body, script);
}
