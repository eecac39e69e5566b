/**
 * `check --format sarif`: findings as a SARIF 2.1.0 log (OASIS Static Analysis Results
 * Interchange Format), the format GitHub code scanning and other CI dashboards read. One run; the
 * tool's rules with their descriptions, default levels and links to their docs; each finding a
 * result with its location (lines and UTF-16 columns, 1-based, as `columnKind` says), the target
 * kernels it breaks on, and its fixes as replacements.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Finding, Range } from '../../server/src/analysis/model';
import { RULE_METAS } from '../../server/src/driver/ruleInfo';
import { packageJson, repositoryUrl, ruleDocUrl } from './pkg';

/** What the SARIF log needs of one checked file. */
export interface SarifFile {
  readonly path: string;
  readonly findings: readonly Finding[];
  /** Why the file could not be checked (a notification, not a result). */
  readonly error?: string;
  /** Rules that threw on the file. */
  readonly failures?: readonly { rule?: string; message: string }[];
}

const LEVEL = { error: 'error', warning: 'warning', info: 'note' } as const;

/** The SARIF log of a `check` run. */
export function sarifLog(files: readonly SarifFile[], cwd: string, target: string, kernels: readonly string[]): object {
  const rules = RULE_METAS;
  const index = new Map(rules.map((r, i) => [r.id, i]));
  const root = pathToFileURL(resolve(cwd)).toString();
  const base = root.endsWith('/') ? root : `${root}/`;
  const location = (path: string) => {
    const abs = resolve(cwd, path);
    const uri = pathToFileURL(abs).toString();
    return uri.startsWith(base) ? { uri: uri.slice(base.length), uriBaseId: 'SRCROOT' } : { uri };
  };
  const region = (r: Range) => ({
    startLine: r.start.line + 1,
    startColumn: r.start.character + 1,
    endLine: r.end.line + 1,
    endColumn: r.end.character + 1,
  });
  const notifications = files.flatMap((f) => [
    ...(f.error
      ? [
          {
            level: 'error',
            message: { text: `${f.path}: ${f.error}` },
            locations: [{ physicalLocation: { artifactLocation: location(f.path) } }],
          },
        ]
      : []),
    ...(f.failures ?? []).map((x) => ({
      level: 'error',
      message: { text: x.rule ? `rule ${x.rule} failed on ${f.path}: ${x.message}` : `${f.path}: ${x.message}` },
      ...(x.rule && index.has(x.rule) ? { associatedRule: { id: x.rule, index: index.get(x.rule) } } : {}),
      locations: [{ physicalLocation: { artifactLocation: location(f.path) } }],
    })),
  ]);
  const repo = repositoryUrl();
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'ebpf-portability',
            fullName: 'eBPF Portability Linter',
            version: packageJson().version,
            semanticVersion: packageJson().version,
            ...(repo ? { informationUri: repo } : {}),
            rules: rules.map((r) => ({
              id: r.id,
              shortDescription: { text: r.description },
              ...(ruleDocUrl(r.id) ? { helpUri: ruleDocUrl(r.id) } : {}),
              help: { text: `${r.description}. Run \`ebpf-portability explain ${r.id}\` for the rule's documentation.` },
              defaultConfiguration: { level: LEVEL[r.defaultSeverity] },
              properties: { fixable: r.fixable },
            })),
          },
        },
        originalUriBaseIds: { SRCROOT: { uri: base } },
        columnKind: 'utf16CodeUnits',
        invocations: [
          {
            executionSuccessful: notifications.length === 0,
            ...(notifications.length ? { toolExecutionNotifications: notifications } : {}),
          },
        ],
        properties: { target: target, kernels: [...kernels] },
        results: files.flatMap((f) =>
          f.findings.map((d) => ({
            ruleId: d.rule,
            ...(index.has(d.rule) ? { ruleIndex: index.get(d.rule) } : {}),
            level: LEVEL[d.severity],
            message: { text: d.message },
            locations: [{ physicalLocation: { artifactLocation: location(f.path), region: region(d.range) } }],
            ...(d.related?.length
              ? {
                  relatedLocations: d.related.map((x, i) => ({
                    id: i,
                    message: { text: x.message },
                    physicalLocation: { artifactLocation: location(f.path), region: region(x.range) },
                  })),
                }
              : {}),
            ...(d.fixes.length
              ? {
                  fixes: d.fixes.map((x) => ({
                    description: { text: x.title },
                    artifactChanges: [
                      {
                        artifactLocation: location(f.path),
                        replacements: x.edits.map((e) => ({ deletedRegion: region(e.range), insertedContent: { text: e.newText } })),
                      },
                    ],
                  })),
                }
              : {}),
            properties: { kernels: d.kernels, ...(d.basis ? { basis: d.basis } : {}) },
          })),
        ),
      },
    ],
  };
}
