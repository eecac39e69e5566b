/**
 * Argument parsing on top of `node:util`'s `parseArgs`: positional words, `--flag`,
 * `--opt value` and `--opt=value`, and list options that may be repeated and take comma lists.
 * Anything the command does not know is a {@link UsageError}, so a typo never passes silently.
 */
import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';

/** A usage error: the CLI prints it with a hint and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The options a command accepts. */
export interface ArgSpec {
  /** Options that take one value; given twice, the last one counts. */
  readonly valued?: readonly string[];
  /** Options whose comma-separated values add up over repeats (`--rule a=off --rule b=off,c=off`). */
  readonly lists?: readonly string[];
  /** Options whose values add up over repeats, each taken whole (`-I dir -I other`). */
  readonly repeated?: readonly string[];
  /** Options without a value. */
  readonly flags?: readonly string[];
  /** One-letter aliases, e.g. `{ h: 'help' }`. */
  readonly short?: Readonly<Record<string, string>>;
}

/** Parsed arguments. */
export interface Args {
  readonly positional: string[];
  /** Each valued or list option given, with its last value as written. */
  readonly options: Map<string, string>;
  readonly flags: Set<string>;
  /** A list or repeated option's items over all its occurrences, in order; undefined when it was not given. */
  list(name: string): string[] | undefined;
}

/**
 * Parses `argv` against `spec`. Like a shell's usual conventions: `--` ends the options, a lone
 * `-` and negative numbers are positional, an option's value may itself start with `-`.
 * @throws UsageError for an unknown option, a missing value or a value given to a flag.
 */
export function parseArgs(argv: readonly string[], spec: ArgSpec): Args {
  const valued = [...(spec.valued ?? []), ...(spec.lists ?? []), ...(spec.repeated ?? [])];
  const flags = spec.flags ?? [];
  const options: NonNullable<ParseArgsConfig['options']> = {};
  const shortOf = (name: string) => Object.entries(spec.short ?? {}).find(([, long]) => long === name)?.[0];
  for (const name of valued) options[name] = { type: 'string', multiple: true, ...(shortOf(name) ? { short: shortOf(name) } : {}) };
  for (const name of flags) options[name] = { type: 'boolean', ...(shortOf(name) ? { short: shortOf(name) } : {}) };
  // Not strict: parseArgs reports every token, and the checks below turn what it would reject
  // into this CLI's own messages.
  const { tokens } = parseNodeArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });

  const positional: string[] = [];
  const last = new Map<string, string>();
  const items = new Map<string, string[]>();
  const set = new Set<string>();
  const seen = new Set<number>();
  for (const t of tokens) {
    if (t.kind === 'positional') positional.push(t.value);
    if (t.kind !== 'option') continue;
    const raw = argv[t.index];
    if (!t.rawName.startsWith('--') && !(t.name in options)) {
      // `-12` is a group of short options to parseArgs; here it is a number, given once.
      if (seen.has(t.index)) continue;
      seen.add(t.index);
      if (/^-\d/.test(raw)) {
        positional.push(raw);
        continue;
      }
      throw new UsageError(`unknown option ${raw}`);
    }
    if (!(t.name in options)) throw new UsageError(`unknown option ${t.rawName}`);
    if (flags.includes(t.name)) {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
      set.add(t.name);
      continue;
    }
    if (t.value === undefined) throw new UsageError(`${t.rawName} needs a value`);
    last.set(t.name, t.value);
    if (spec.lists?.includes(t.name)) items.set(t.name, [...(items.get(t.name) ?? []), ...splitList(t.value)]);
    if (spec.repeated?.includes(t.name)) items.set(t.name, [...(items.get(t.name) ?? []), t.value]);
  }
  return { positional, options: last, flags: set, list: (name) => items.get(name) };
}

/** Splits a comma-separated option value. */
export function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
