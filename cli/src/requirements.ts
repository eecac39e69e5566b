/**
 * `ebpf-portability requirements <paths>`: the portability report (server/src/driver/requirements.ts,
 * which the language server shares), one row per program, for the input files. Markdown
 * (default), JSON or CSV.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { buildFileModel } from '../../server/src/analysis/file';
import { type ProgramRequirements, programRequirements, requirementsCsv, requirementsMarkdown } from '../../server/src/driver/requirements';
import { loadCParser } from '../../server/src/parse/documents';
import { parseArgs, UsageError } from './args';
import { ANALYSIS_OPTIONS, analysisSetup, analyzeInputs, withAnalysisSpec } from './check';
import type { Io } from './db';

const USAGE = `usage: ebpf-portability requirements <files|dirs…> [options]

The portability report: one row per program (a function with SEC()) with its program type, the
oldest kernel per architecture from which it loads on every target kernel, the version floor the
facts give and what sets it (helpers, kfuncs, map and program types), the CONFIG options those
need, and the target kernels it fails on.

options:
  --format F            markdown (default), json or csv
${ANALYSIS_OPTIONS}

exit status: 0 the report was written, 2 bad usage, unreadable input or no BPF C file found
`;

/** Runs `requirements`; returns the exit status. */
export async function requirementsCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, withAnalysisSpec({ valued: ['format'] }));
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length === 0) throw new UsageError('requirements needs at least one file or directory');
  const format = args.options.get('format') ?? 'markdown';
  if (format !== 'markdown' && format !== 'json' && format !== 'csv')
    throw new UsageError(`--format must be markdown, json or csv, not "${format}"`);
  const setup = analysisSetup(args);
  const run = await analyzeInputs(setup, args.positional, false);
  const parser = await loadCParser();
  const rows: ProgramRequirements[] = [];
  for (const r of run.results) {
    for (const e of r.error ? [r.error] : []) io.err(`${r.path}: ${e}\n`);
    for (const x of r.failures ?? []) io.err(`${r.path}: error: ${x.rule ? `rule ${x.rule} failed: ` : ''}${x.message}\n`);
    if (r.text === undefined || r.error) continue;
    const tree = parser.parseText(r.text);
    if (!tree) continue;
    try {
      const model = buildFileModel(pathToFileURL(resolve(r.path)).toString(), r.text, tree);
      rows.push(...programRequirements(setup.db, r, model, r.kernels ?? setup.kernels));
    } finally {
      tree.delete();
    }
  }
  const arches = [...new Set(setup.kernels.map((k) => k.arch))].sort();
  if (format === 'json') io.out(`${JSON.stringify({ version: 1, target: setup.settings.targetKernels, programs: rows }, null, 2)}\n`);
  else if (format === 'csv') io.out(requirementsCsv(rows, arches));
  else io.out(requirementsMarkdown(rows, arches, setup.settings.targetKernels, setup.kernels.length));
  for (const p of run.problems) io.err(`warning: ${p}\n`);
  return run.unreadable || run.results.some((r) => r.failures) ? 2 : 0;
}
