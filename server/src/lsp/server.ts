/**
 * The language server: document sync, diagnostics (debounced, cancelled by newer edits),
 * quick fixes and fix-all, settings resolved per document. Every handler is guarded: whatever a
 * user types or a client sends, the server logs the problem and keeps serving.
 */
import type { CodeAction, CodeLens, Hover, InitializeParams, InitializeResult } from 'vscode-languageserver';
import { type Connection, ErrorCodes, ResponseError, type WorkDoneProgress } from './connection';
import { CodeActionKind, MarkupKind, TextDocumentSyncKind } from './protocol';
import { pathToFileURL } from 'node:url';
import { KernelDb } from '../../../kernel-db/src/query/db';
import type { Finding } from '../analysis/model';
import { isBpfDocument, isBpfPath } from '../analysis/bpfDocument';
import { Engine, toPath } from '../driver/engine';
import { findClang } from '../driver/compile';
import { readBounded } from '../driver/files';
import { type ObjectPass, ObjectPassCancelled, objectPass } from '../driver/objectPass';
import { DocumentStore, liveTrees, loadCParser, type ParsedDocument } from '../parse/documents';
import { DEFAULT_SETTINGS, validateSettings, type Settings } from '../driver/settings';
import { type Conversion, convertBcc } from '../driver/convertBcc';
import { documentReport, type PortabilityReport, programSummary, requirementsMarkdown } from '../driver/requirements';
import { FIX_ALL_KIND, fixAll, publishedDiagnostics, quickFixes, ruleActions, SOURCE } from './convert';
import { registerMachineRequests } from './machine';
import { CODE_CACHE_STATE, type CodeCacheState } from './codeCache';
import { youngGenerationSize } from './memoryFlags';
import { documentUri, isChange, isCodeActionParams, isDocumentPosition, isOpen, sample } from './params';

/**
 * What the VS Code extension tells the server it handles itself (`initializationOptions`): the
 * rule documentation command, and the status notification (then settings problems are the
 * client's to show, once, with an "Open Settings" action, instead of warning messages).
 */
interface ClientOptions {
  readonly settings?: unknown;
  readonly showRuleDocCommand?: boolean;
  readonly statusNotification?: boolean;
}

/**
 * `ebpfPortability/convertBcc` (params `{ uri }`): the open BCC program (a C file or a Python tool)
 * written as a libbpf CO-RE `.bpf.c` (driver/convertBcc.ts): `{ text, notes }`, `text` empty when
 * nothing could be converted, `notes` what is left to do by hand.
 */
export const CONVERT_BCC_REQUEST = 'ebpfPortability/convertBcc';

/** `ebpfPortability/status`: the target a document is analysed against, and what is wrong with the settings. */
export const STATUS_NOTIFICATION = 'ebpfPortability/status';
export interface StatusParams {
  readonly uri: string;
  /** The target spec and architectures in effect (the project's and the file's own applied). */
  readonly target: string;
  readonly architectures: readonly string[];
  /** How many kernels that is. */
  readonly kernels: number;
  /** Problems with the settings (each names the setting), empty when they are fine. */
  readonly problems: readonly string[];
}

/**
 * `ebpfPortability/stats` (no params): what the server keeps now, for leak checks: open
 * documents, tree-sitter trees alive (documents' and headers'), parsed headers, documents with
 * analysis caches, object-pass verdicts, and the JavaScript heap in bytes (after a collection when
 * Node runs with `--expose-gc`).
 */
export const STATS_REQUEST = 'ebpfPortability/stats';
export interface ServerStats {
  readonly documents: number;
  readonly trees: number;
  readonly headers: number;
  readonly headerTrees: number;
  readonly analyses: number;
  readonly loaderFiles: number;
  readonly objects: number;
  readonly settings: number;
  readonly heapUsed: number;
  /** The size of V8's young generation in bytes (the launcher caps its growth: memoryFlags.ts). */
  readonly youngGeneration: number;
  /** How the launcher (boot.ts) ran the server's bundle: from V8's code cache, or compiling it. */
  readonly codeCache: CodeCacheState;
}

/**
 * `ebpfPortability/report` (params {@link ReportParams}): the portability report of an open BPF C
 * document (driver/requirements.ts, as `ebpf-portability requirements` prints it) from the
 * findings its diagnostics show, with the programs × target kernels grid and the CLI's Markdown;
 * null for a document that is not BPF C or not analysed. Code lenses above each program show
 * its summary and run `ebpfPortability.showReport` with the document's URI.
 */
export const REPORT_REQUEST = 'ebpfPortability/report';
export interface ReportParams {
  readonly uri: string;
  /** How the report names the file (a workspace-relative path); the file's path by default. */
  readonly path?: string;
}
export interface ReportResult extends PortabilityReport {
  readonly uri: string;
  /** The target spec in effect and how many kernels it is. */
  readonly target: string;
  readonly targetKernels: number;
  /** The report as the CLI's `requirements` prints it. */
  readonly markdown: string;
}

/** The largest file the object pass compiles (what the editor would hold anyway). */
const MAX_COMPILED_BYTES = 10 * 1024 * 1024;

/**
 * Runs `run` after `ms`, or with no delay asked, once the event loop has turned: the connection
 * hands over one message a turn, and messages already received come first, so a burst of edits
 * is analysed once, at its last version (a timer would add a millisecond to every edit). Returns
 * how to cancel it.
 */
function later(ms: number, run: () => void): () => void {
  if (ms > 0) {
    const t = setTimeout(run, ms);
    return () => clearTimeout(t);
  }
  const i = setImmediate(run);
  return () => clearImmediate(i);
}

/** Options for tests and embedding. */
export interface ServerOptions {
  /** Delay between the last edit and analysis, in ms. */
  readonly debounceMs?: number;
  /** Opens the kernel database (main.ts: the one its bundle started reading as it loaded). */
  readonly openDatabase?: () => Promise<KernelDb>;
}

interface DocState {
  /** Cancels the pending analysis (see `later`). */
  cancel?: () => void;
  /** Findings of the last analysis and the version they belong to. */
  results?: { version: number; findings: Finding[] };
  /** The object pass waits for the document's first diagnostics (clang would compete with them). */
  objectPending?: boolean;
  /** The latest analysis run started for the document; older runs stop at their next slice. */
  run?: number;
  /** The analysis running now, of which snapshot. */
  running?: { doc: ParsedDocument; done: Promise<void> };
}

/**
 * How long one slice of a document's analysis runs before other work gets the thread: short
 * enough that a keystroke in another document waits little, long enough that a small file is
 * done in one.
 */
const SLICE_MS = 20;
/**
 * How long what the disk said of includes, project files and loaders is reused (stat answers and
 * directory listings): a header changed on disk without the client saying so is seen by the first
 * analysis this long after the change.
 */
const FS_META_TTL_MS = 1000;
/**
 * How long a document's analysis waits for the editor's answer to `workspace/configuration`: a
 * client that announced the request and never answers it would otherwise leave the document
 * without diagnostics for good. Past it, the last settings the client sent (or the defaults) are
 * used, and the document is analysed again when the answer comes.
 */
const SETTINGS_WAIT_MS = 1500;
const NO_ANSWER = Symbol('no answer');
/** Why an object pass was stopped: the editor's settings came late, and it runs again with them. */
const LATE_SETTINGS = Symbol('late settings');
/**
 * Test hook: how long an analysis runs before it is said, in milliseconds, in place of
 * {@link LONG_ANALYSIS_MS} (a test of the progress must not depend on how fast its machine is).
 */
export const TEST_LONG_ANALYSIS_ENV = 'EBPF_PORTABILITY_TEST_LONG_ANALYSIS_MS';
/** An analysis running longer than this is said in the output channel and as progress. */
const LONG_ANALYSIS_MS = Number(process.env[TEST_LONG_ANALYSIS_ENV]) > 0 ? Number(process.env[TEST_LONG_ANALYSIS_ENV]) : 2000;

/** Wires the server onto a connection and starts listening. */
export function startServer(connection: Connection, opts: ServerOptions = {}): void {
  const debounceMs = opts.debounceMs ?? 0;
  let docs: DocumentStore | undefined;
  let engine: Engine | undefined;
  let cParser: Awaited<ReturnType<typeof loadCParser>> | undefined;
  let startup: Promise<void> | undefined;
  let configurationCapability = false;
  let codeLensRefresh = false;
  let workDoneProgress = false;
  let globalSettings: unknown;
  let clientOptions: ClientOptions = {};
  /** Settings problems of each document's last settings fetch. */
  const settingsProblems = new Map<string, string[]>();
  /**
   * The document whose settings were asked for at its open (at most one: opened while no other
   * was open or opening), until its open is handled: a settings problem found meanwhile is its.
   */
  const opening = new Set<string>();
  const states = new Map<string, DocState>();
  const warned = new Set<string>();
  /** Project files already named in the log. */
  const logged = new Set<string>();
  /** The object pass of each document: the text it compiled (the file on disk) and its outcome. */
  const objects = new Map<string, { text: string; pass: ObjectPass }>();
  /**
   * Documents whose object pass runs now (with what stops it: an edit or a close, as its result
   * would hold only for the text on disk), and those to run again when it ends.
   */
  const compiling = new Map<string, AbortController>();
  const recompile = new Set<string>();
  /**
   * The text each document's last object pass found on disk: an edit back to it (an undo) runs
   * the pass again where the edit away from it had stopped it.
   */
  const onDisk = new Map<string, string>();
  const logOnce = (msg: string) => {
    if (logged.has(msg)) return;
    logged.add(msg);
    connection.console.info(`eBPF portability: ${msg}`);
  };

  /**
   * Compiles a document that has no unsaved changes and checks its object, in the background;
   * its findings join the source pass's while the text is the one compiled.
   */
  const runObjectPass = async (uri: string): Promise<void> => {
    await startup;
    const doc = docs?.get(uri);
    const path = toPath(uri);
    if (!engine || !doc || !path || doc.tooLarge || !isBpfDocument(doc.uri, doc.text, doc.sites)) return;
    const settings = await settingsFor(uri);
    if (settings.compile === 'off') return;
    const clang = findClang(settings.clangPath || undefined);
    if (!clang) {
      logOnce(settings.clangPath ? `clangPath ${settings.clangPath} does not exist: no object pass` : 'no clang on PATH: no object pass');
      return;
    }
    let disk: string;
    try {
      disk = readBounded(path, MAX_COMPILED_BYTES) ?? '';
    } catch {
      return;
    }
    // The document's own string while it is the file's: no second copy of the text.
    onDisk.set(uri, disk === doc.text ? doc.text : disk);
    // Edited while the settings were asked for: that text is not the file's.
    if (disk !== doc.text || docs?.get(uri) !== doc) return;
    if (compiling.has(uri)) {
      recompile.add(uri);
      return;
    }
    const stop = new AbortController();
    compiling.set(uri, stop);
    try {
      const t = engine.documentTarget(uri, doc.text, settings);
      const pass = await objectPass(engine.db, clang, path, doc.text, t.project, t.settings, t.kernels, stop.signal);
      // Closed while it compiled: nothing is kept for it.
      if (!states.has(uri)) return;
      objects.set(uri, { text: disk, pass });
      if (pass.mode === 'source') logOnce(`${uri.split('/').pop()}: object pass skipped: ${pass.reason}`);
      schedule(uri);
    } catch (e) {
      // Stopped for the editor's late settings: it runs again with them, nothing to say.
      if (e instanceof ObjectPassCancelled && stop.signal.reason === LATE_SETTINGS) return;
      if (e instanceof ObjectPassCancelled)
        logOnce(
          `${uri.split('/').pop()}: object pass stopped: the document changed while it was compiled or checked (a save, or an undo back to the saved text, runs it again)`,
        );
      else connection.console.error(`object pass: ${(e as Error).stack ?? e}`);
    } finally {
      compiling.delete(uri);
      if (recompile.delete(uri)) void runObjectPass(uri);
    }
  };

  /** Failures already logged (the same rule failing on every keystroke is said once). */
  const failed = new Set<string>();
  const failedOnce = (msg: string, stack?: string) => {
    if (failed.has(msg)) return;
    if (failed.size > 1000) failed.clear();
    failed.add(msg);
    connection.console.error(`eBPF portability: ${msg}${stack ? `\n${stack}` : ''}`);
  };
  const warnOnce = (msg: string) => {
    if (warned.has(msg)) return;
    warned.add(msg);
    // A client that answers it with an error must not stop the server with an unhandled rejection.
    connection.showMessage('warning', `eBPF portability: ${msg}`).catch((e: unknown) => {
      connection.console.warn(`the client refused a message: ${(e as Error)?.message ?? e}`);
    });
  };
  const guard = <T>(what: string, fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (e) {
      connection.console.error(`${what}: ${(e as Error).stack ?? e}`);
      return fallback;
    }
  };

  /** Methods a malformed notification of was dropped (said once each). */
  const droppedOnce = new Set<string>();
  const malformed = (method: string, params: unknown): void => {
    if (droppedOnce.has(method)) return;
    droppedOnce.add(method);
    connection.console.warn(`eBPF portability: ignored a malformed ${method} (${sample(params)}); later ones are ignored without a word`);
  };
  const invalid = (method: string, params: unknown) =>
    new ResponseError(ErrorCodes.InvalidParams, `malformed ${method} params: ${sample(params)}`);

  connection.onRequest('initialize', (params: InitializeParams): InitializeResult => {
    // A client's capabilities are what it says; one that says nothing offers nothing.
    const capabilities = typeof params?.capabilities === 'object' ? params.capabilities : undefined;
    configurationCapability = !!capabilities?.workspace?.configuration;
    codeLensRefresh = !!capabilities?.workspace?.codeLens?.refreshSupport;
    workDoneProgress = !!capabilities?.window?.workDoneProgress;
    const options = params?.initializationOptions;
    clientOptions = typeof options === 'object' && options !== null ? (options as ClientOptions) : {};
    globalSettings = clientOptions.settings;
    startup = (async () => {
      // The store and the facts are read on libuv's threads while the grammar's WASM compiles.
      const [parser, db] = await Promise.all([loadCParser(), (opts.openDatabase ?? (() => KernelDb.openAsync()))()]);
      cParser = parser;
      docs = new DocumentStore(parser);
      engine = new Engine(db, (text) => parser.parseText(text));
      // Keystrokes come faster than files change on disk: what the disk said is reused for a
      // moment, and forgotten as soon as the client says a file changed or a document is saved.
      engine.fsMeta.ttlMs = FS_META_TTL_MS;
      // Headers open in the editor are read as they are there, saved or not.
      engine.overlay = (path) => docs?.get(pathToFileURL(path).toString())?.text;
    })().catch((e) => {
      connection.console.error(`eBPF portability: cannot start analysis: ${(e as Error).stack ?? e}`);
      connection.showMessage('error', `eBPF portability: cannot start analysis: ${(e as Error).message}`).catch(() => undefined);
    });
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, FIX_ALL_KIND] },
        hoverProvider: true,
        codeLensProvider: { resolveProvider: false },
      },
      serverInfo: { name: SOURCE },
    };
  });

  let registered = false;
  connection.onNotification('initialized', () => {
    if (configurationCapability && !registered) {
      registered = true;
      void connection
        .sendRequest('client/registerCapability', {
          registrations: [
            {
              id: 'ebpfPortability.configuration',
              method: 'workspace/didChangeConfiguration',
              registerOptions: { section: 'ebpfPortability' },
            },
          ],
        })
        .catch(() => undefined);
    }
  });

  // Settings are asked for once per document and kept until the configuration changes: one
  // round trip to the client per keystroke would be most of the edit-to-diagnostics time.
  const settingsCache = new Map<string, Promise<Settings>>();
  const settingsFor = (uri: string): Promise<Settings> => {
    let p = settingsCache.get(uri);
    if (!p) {
      const fetched: Promise<Settings> = fetchSettings(uri, () => settingsCache.get(uri) === fetched);
      settingsCache.set(uri, fetched);
      p = fetched;
    }
    return p;
  };
  /** Whether the log has said that the editor is not answering (said again once it has answered since). */
  let unansweredSaid = false;
  /**
   * The settings of document `uri` from the editor. `current` says whether what this call gives is
   * still the document's (neither the configuration nor the document changed since it was asked).
   */
  const fetchSettings = async (uri: string, current: () => boolean): Promise<Settings> => {
    let raw: unknown = (globalSettings as { ebpfPortability?: unknown } | undefined)?.ebpfPortability ?? globalSettings;
    if (configurationCapability) {
      // One answer per item asked for; anything else is no settings.
      const asked = connection
        .sendRequest('workspace/configuration', { items: [{ scopeUri: uri, section: 'ebpfPortability' }] })
        .then((answer) => (Array.isArray(answer) ? answer[0] : null));
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const answer = await Promise.race([asked, new Promise((resolve) => (timer = setTimeout(resolve, SETTINGS_WAIT_MS, NO_ANSWER)))]);
        if (answer !== NO_ANSWER) {
          raw = answer;
          unansweredSaid = false;
        } else {
          if (!unansweredSaid) {
            unansweredSaid = true;
            connection.console.info(
              `eBPF portability: the editor has not answered workspace/configuration within ${SETTINGS_WAIT_MS / 1000} s (first for ${uri}): documents are checked with ${globalSettings === undefined || globalSettings === null ? 'the default settings' : 'the last settings the editor sent'} until it answers`,
            );
          }
          void asked.then(
            (late) => {
              unansweredSaid = false;
              // Still the answer to give: the configuration has not changed since, and the document is open.
              if (!current() || !(states.has(uri) || opening.has(uri))) return;
              settingsCache.set(uri, Promise.resolve(settingsOf(uri, late)));
              // The object pass ran with the settings used meanwhile (its compiler, its kernels): again.
              compiling.get(uri)?.abort(LATE_SETTINGS);
              objects.delete(uri);
              schedule(uri);
              void runObjectPass(uri);
            },
            () => undefined,
          );
        }
      } catch {
        // A client that announced the capability but fails the request: use what we have.
      } finally {
        clearTimeout(timer);
      }
    }
    return settingsOf(uri, raw);
  };
  const settingsOf = (uri: string, raw: unknown): Settings => {
    const { settings, problems } = validateSettings(raw);
    if (states.has(uri) || opening.has(uri)) settingsProblems.set(uri, problems);
    if (!clientOptions.statusNotification) problems.forEach(warnOnce);
    return settings;
  };

  /** Documents whose last publish left findings out (the output channel said so once). */
  const capped = new Set<string>();
  const publish = (uri: string, version: number | undefined, findings: Finding[]) => {
    const { diagnostics, omitted } = publishedDiagnostics(findings, uri);
    if (omitted > 0 && !capped.has(uri)) {
      capped.add(uri);
      connection.console.info(
        `eBPF portability: ${uri}: ${findings.length.toLocaleString('en-US')} findings; the editor is sent ${(diagnostics.length - 1).toLocaleString('en-US')} of them (errors first) and a line that says so`,
      );
    } else if (omitted === 0) capped.delete(uri);
    const sent = connection.sendNotification('textDocument/publishDiagnostics', {
      uri,
      ...(version !== undefined ? { version } : {}),
      diagnostics,
    });
    const state = states.get(uri);
    if (state?.objectPending) {
      state.objectPending = false;
      // Once the diagnostics are written: the writer sends them on a later turn of the event
      // loop, and the pass's start (finding clang, reading the file, masking it, spawning clang,
      // which loads Node's child-process code on its first use) would otherwise run first.
      sent.then(
        () => runObjectPass(uri),
        // A write that failed means the client is gone: nothing would read the pass's findings.
        () => undefined,
      );
    }
  };

  /**
   * Analyses a document and publishes its diagnostics. A request that only needs this version's
   * results (`join`: code actions, the report) waits for an analysis of it already running
   * instead of starting another: requests on every cursor move must not restart it forever.
   */
  const validate = async (doc: ParsedDocument, join = false): Promise<void> => {
    const state = states.get(doc.uri);
    if (!state) return;
    if (!join || state.running?.doc !== doc) {
      const done = analyseAndPublish(doc);
      state.running = { doc, done };
    }
    // Until the latest run of this very snapshot ends (a newer run of it may replace the one awaited).
    for (let r = state.running; r && r.doc === doc; r = state.running) {
      await r.done;
      if (state.running === r) break;
    }
  };

  const analyseAndPublish = async (doc: ParsedDocument) => {
    if (!engine) return;
    const state = states.get(doc.uri);
    if (!state) return;
    if (doc.tooLarge || !doc.tree || !isBpfDocument(doc.uri, doc.text, doc.sites)) {
      // The output channel says why for every document; a warning only for BPF documents: a
      // vmlinux.h opened to read is over the limits and is no one's mistake.
      if (doc.tooLarge) {
        logOnce(`${doc.uri}: not analysed: ${doc.skipped ?? 'over the size limit'}`);
        if (isBpfDocument(doc.uri, doc.text)) warnOnce(`${doc.uri.split('/').pop()}: skipped: ${doc.skipped ?? 'over the size limit'}`);
      } else if (!doc.tree) logOnce(`${doc.uri}: not analysed: parsing took longer than the limit`);
      state.results = { version: doc.version, findings: [] };
      publish(doc.uri, doc.version, []);
      return;
    }
    const settings = await settingsFor(doc.uri);
    // A newer edit, or a close and reopen (same version, its tree deleted), arrived while
    // settings were fetched: the current snapshot's own run publishes.
    if (docs?.get(doc.uri) !== doc) return;
    // The object pass's verdicts hold while the text is the one it compiled.
    const object = objects.get(doc.uri);
    const pass = object && object.text === doc.text ? object.pass : undefined;
    // The analysis runs in time slices: between two, other documents' analyses and newer
    // messages run; a newer run for this document (an edit, a close) ends this one.
    const run = (state.run = (state.run ?? 0) + 1);
    const steps = guard(
      `analysis of ${doc.uri}`,
      () => engine!.analyzeDocumentSteps(doc.uri, doc.text, doc.tree!, settings, true, doc.sites, undefined, pass),
      undefined,
    );
    let result: ReturnType<Engine['analyzeDocument']> | undefined;
    const started = performance.now();
    // An analysis past LONG_ANALYSIS_MS is said: in the output channel, and as the editor's own
    // progress (a status-bar item with the share done) where the client offers it.
    let long: Promise<WorkDoneProgress | undefined> | undefined;
    let done = 0;
    try {
      for (let slice = 0; steps; slice++) {
        if (!long && performance.now() - started > LONG_ANALYSIS_MS) {
          const name = doc.uri.split('/').pop();
          const lines = doc.text.split('\n').length;
          connection.console.info(
            `eBPF portability: ${name} (version ${doc.version}, ${lines} lines) takes more than ${LONG_ANALYSIS_MS / 1000} s to analyse; other documents are answered meanwhile`,
          );
          // The share as of now: reports made while the client creates the progress come after it.
          const begun = Math.round(done * 100);
          long = workDoneProgress
            ? connection.createWorkDoneProgress().then(
                (p) => {
                  p.begin('eBPF portability', begun, `analysing ${name} (${lines.toLocaleString('en-US')} lines)`);
                  return p;
                },
                () => undefined,
              )
            : Promise.resolve(undefined);
        } else if (long && slice % 10 === 0) {
          const pct = Math.round(done * 100);
          void long.then((p) => p?.report(pct));
        }
        if (slice > 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          // Superseded: its tree may be deleted already, so the steps are never resumed.
          if (states.get(doc.uri) !== state || state.run !== run || docs?.get(doc.uri) !== doc) {
            guard('dropping an analysis', () => steps.return(undefined as never), undefined);
            return;
          }
        }
        const end = performance.now() + SLICE_MS;
        const step = guard(
          `analysis of ${doc.uri}`,
          () => {
            let r = steps.next();
            while (!r.done && performance.now() < end) {
              done = r.value;
              r = steps.next();
            }
            if (!r.done) done = r.value;
            return r;
          },
          undefined,
        );
        if (!step || step.done) {
          result = step?.value;
          break;
        }
      }
    } finally {
      void long?.then((p) => p?.done());
    }
    if (!result) {
      // Never leave the previous version's diagnostics at positions this text has shifted.
      state.results = { version: doc.version, findings: [] };
      publish(doc.uri, doc.version, []);
      return;
    }
    // What threw loses its own findings; the others are published. Said in the output channel.
    for (const f of result.failures)
      failedOnce(
        `${f.rule ? `rule ${f.rule} failed on ${doc.uri} (its findings there are missing)` : `${doc.uri}`}: ${f.message}`,
        f.stack,
      );
    const findings = result.findings;
    if (clientOptions.statusNotification) {
      // The client shows the target and the problems with the settings (the target's among them).
      const t = guard('status', () => engine!.documentTarget(doc.uri, doc.text, settings), undefined);
      const problems = [...(settingsProblems.get(doc.uri) ?? []), ...result.problems];
      if (t) {
        const status: StatusParams = {
          uri: doc.uri,
          target: t.settings.targetKernels,
          architectures: t.settings.architectures,
          kernels: t.kernels.length,
          problems,
        };
        void connection.sendNotification(STATUS_NOTIFICATION, status);
      }
    } else result.problems.forEach(warnOnce);
    for (const f of result.projectFiles) logOnce(`using ${f} for ${doc.uri} and the files beside it`);
    // The same text analysed again (the object pass, settings, files on disk): code lenses are stale.
    const again = state.results?.version === doc.version;
    state.results = { version: doc.version, findings };
    publish(doc.uri, doc.version, findings);
    if (again && codeLensRefresh) void connection.sendRequest('workspace/codeLens/refresh').catch(() => undefined);
  };

  const schedule = (uri: string) => {
    const state = states.get(uri);
    if (!state) return;
    state.cancel?.();
    state.cancel = later(debounceMs, () => {
      state.cancel = undefined;
      void (startup ?? Promise.resolve()).then(() => {
        const doc = docs?.get(uri);
        return doc ? validate(doc).catch((e) => connection.console.error(`validate: ${(e as Error).stack ?? e}`)) : undefined;
      });
    });
  };

  // Open, change and close run in the order they arrived, after the start-up: a close that
  // arrived while the parser loaded must not run before its open (the document would stay open).
  connection.onNotification('textDocument/didOpen', (p) => {
    if (!isOpen(p)) return malformed('textDocument/didOpen', p);
    // A document opened while no other is open or opening (the first, at start-up) has its
    // settings' round trip to the client overlap the start-up (the grammar, the database), if it
    // is named as BPF: other documents' settings (and their warnings) wait until the analysis
    // finds them to be BPF C. The others ask in their analysis: with every one's settings asked
    // for at open, 20 documents opened at once peaked at ~165 MiB of RSS instead of ~146
    // (npm run bench), for ~2 ms sooner answers.
    if (isBpfPath(p.textDocument.uri) && states.size === 0 && opening.size === 0) {
      opening.add(p.textDocument.uri);
      void settingsFor(p.textDocument.uri);
    }
    void (startup ?? Promise.resolve()).then(() => {
      opening.delete(p.textDocument.uri);
      states.get(p.textDocument.uri)?.cancel?.();
      states.set(p.textDocument.uri, { objectPending: true });
      guard('open', () => docs?.open(p.textDocument.uri, p.textDocument.text, p.textDocument.version), undefined);
      schedule(p.textDocument.uri);
    });
  });

  connection.onNotification('textDocument/didChange', (p) => {
    if (!isChange(p)) {
      malformed('textDocument/didChange', p);
      // The change is lost, so the text of an open document the server holds is no longer the
      // editor's: later changes would land in the wrong places. It is closed here (its
      // diagnostics cleared) until the editor opens it again.
      const lost = documentUri(p);
      if (lost !== undefined)
        void (startup ?? Promise.resolve()).then(() => {
          if (!docs?.get(lost)) return;
          close(lost);
          warnOnce(
            `${lost.split('/').pop()}: the editor sent a change this server cannot read, so its text here is out of date; close and reopen the file to have it checked again`,
          );
        });
      return;
    }
    void (startup ?? Promise.resolve()).then(() => {
      const uri = p.textDocument.uri;
      const current = docs?.get(uri);
      if (!current) return malformed('textDocument/didChange of a document that is not open', p);
      // A change whose range is null replaces the whole text (as one without a range does); a
      // null version (LSP 3.15 allowed one) counts on from the last, so each text has its own.
      const changes = p.contentChanges.map((c) => (c.range ? { range: c.range, text: c.text } : { text: c.text }));
      const version = p.textDocument.version ?? current.version + 1;
      const doc = guard('change', () => docs?.change(uri, version, changes), undefined);
      if (!doc) return;
      const saved = onDisk.get(uri);
      const back = saved !== undefined && saved.length === doc.text.length && saved === doc.text;
      const live = compiling.get(uri);
      // The object being compiled is the file on disk's, which this text no longer is: its
      // compile and check would cost a core and then the server's thread for nothing. Back on
      // that text (an undo), a pass the edits stopped runs again.
      if (!back) live?.abort();
      else if (objects.get(uri)?.text !== doc.text && (!live || live.signal.aborted)) void runObjectPass(uri);
      schedule(uri);
      // An edited header may change what every open program includes from it.
      if (!/\.c$/i.test(uri)) for (const other of states.keys()) if (other !== uri) schedule(other);
    });
  });

  // A header, a loader or a project file changed on disk: what was read from it is stale.
  connection.onNotification('workspace/didChangeWatchedFiles', () => {
    engine?.fsMeta.clear();
    for (const uri of states.keys()) {
      schedule(uri);
      void runObjectPass(uri);
    }
  });

  // Saved: the file on disk is the document again, so its object can be checked.
  connection.onNotification('textDocument/didSave', (p) => {
    const uri = documentUri(p);
    if (uri === undefined) return malformed('textDocument/didSave', p);
    // A saved header may be one an include resolves to, or one that was missing.
    engine?.fsMeta.clear();
    void runObjectPass(uri);
  });

  connection.onNotification('textDocument/didClose', (p) => {
    const uri = documentUri(p);
    if (uri === undefined) return malformed('textDocument/didClose', p);
    void (startup ?? Promise.resolve()).then(() => close(uri));
  });
  const close = (uri: string) => {
    compiling.get(uri)?.abort();
    settingsProblems.delete(uri);
    states.get(uri)?.cancel?.();
    states.delete(uri);
    settingsCache.delete(uri);
    objects.delete(uri);
    onDisk.delete(uri);
    guard('close', () => docs?.close(uri), undefined);
    engine?.forget(uri);
    // Nothing open: what was read for the documents (headers, loaders) is dropped too.
    if (states.size === 0) engine?.release();
    publish(uri, undefined, []);
    // A closed header is read from the disk again.
    if (!/\.c$/i.test(uri)) for (const other of states.keys()) schedule(other);
  };

  connection.onNotification('workspace/didChangeConfiguration', (p: { settings?: unknown } | null) => {
    if (typeof p !== 'object' || p === null) return malformed('workspace/didChangeConfiguration', p);
    globalSettings = p.settings;
    settingsCache.clear();
    warned.clear();
    for (const uri of states.keys()) schedule(uri);
  });

  connection.onRequest('textDocument/codeAction', async (p): Promise<CodeAction[]> => {
    if (!isCodeActionParams(p)) throw invalid('textDocument/codeAction', p);
    await startup;
    const doc = docs?.get(p.textDocument.uri);
    const state = states.get(p.textDocument.uri);
    if (!doc || !state) return [];
    // Answer from results for this exact version; analyse now if the debounce has not run yet.
    if (state.results?.version !== doc.version) await validate(doc, true);
    const results = state.results;
    const findings = results && results.version === doc.version ? results.findings : [];
    return guard('codeAction', () => {
      const only = p.context.only;
      const wantFixAll = !only || only.some((k) => FIX_ALL_KIND.startsWith(k));
      const wantQuick = !only || only.some((k) => CodeActionKind.QuickFix.startsWith(k));
      const out: CodeAction[] = [];
      if (wantQuick) {
        out.push(...quickFixes(doc.uri, doc.version, findings, p.range));
        out.push(...ruleActions(doc.uri, doc.version, doc.text, findings, p.range, !!clientOptions.showRuleDocCommand));
      }
      if (wantFixAll) {
        const all = fixAll(doc.uri, doc.version, findings);
        if (all) out.push(all);
      }
      return out;
    }, []);
  });

  connection.onRequest('textDocument/hover', async (p): Promise<Hover | null> => {
    if (!isDocumentPosition(p)) throw invalid('textDocument/hover', p);
    await startup;
    const doc = docs?.get(p.textDocument.uri);
    if (!doc?.tree || !engine || !isBpfDocument(doc.uri, doc.text, doc.sites)) return null;
    const settings = await settingsFor(doc.uri);
    // Edited, or closed and reopened, meanwhile: this snapshot's tree may be deleted.
    if (docs?.get(doc.uri) !== doc) return null;
    const h = guard('hover', () => engine!.hover(doc.uri, doc.text, doc.tree!, settings, doc.offsetAt(p.position)), undefined);
    return h ? { contents: { kind: MarkupKind.Markdown, value: h.markdown }, range: h.range } : null;
  });

  connection.onRequest(CONVERT_BCC_REQUEST, async (p: { uri: string }): Promise<Conversion> => {
    if (typeof p?.uri !== 'string') throw invalid(CONVERT_BCC_REQUEST, p);
    await startup;
    const doc = docs?.get(p.uri);
    if (!doc || !engine || !cParser) return { text: '', notes: ['the document is not open in the editor'] };
    const path = toPath(p.uri) ?? 'program.c';
    const outUri = pathToFileURL(`${path.replace(/\.(py|c)$/i, '')}.bpf.c`).href;
    // The converted program is judged as libbpf loads it, with the default settings.
    const analyze = (c: string) => {
      const tree = cParser!.parseText(c);
      if (!tree) return [];
      try {
        return engine!.analyzeDocument(outUri, c, tree, DEFAULT_SETTINGS).findings;
      } finally {
        tree.delete();
      }
    };
    return guard('convert-bcc', () => convertBcc(path, doc.text, engine!.db, analyze), {
      text: '',
      notes: ['the conversion failed; the output channel says why'],
    });
  });

  connection.onRequest(STATS_REQUEST, async (): Promise<ServerStats> => {
    await startup;
    (globalThis as { gc?: () => void }).gc?.();
    const e = engine?.stats() ?? { headers: 0, headerTrees: 0, analyses: 0, loaderFiles: 0, diskAnswers: 0 };
    return {
      documents: docs?.size ?? 0,
      trees: liveTrees(),
      ...e,
      objects: objects.size,
      settings: settingsCache.size,
      heapUsed: process.memoryUsage().heapUsed,
      youngGeneration: youngGenerationSize(),
      codeCache: (globalThis as Record<symbol, CodeCacheState | undefined>)[CODE_CACHE_STATE] ?? 'none',
    };
  });

  /** The report of an open BPF C document from the findings of its current version (analysed now if stale). */
  const reportFor = async (uri: string, path?: string): Promise<ReportResult | null> => {
    await startup;
    const doc = docs?.get(uri);
    const state = states.get(uri);
    if (!engine || !doc?.tree || !state || doc.tooLarge || /\.py$/i.test(uri) || !isBpfDocument(doc.uri, doc.text, doc.sites)) return null;
    // After each wait the document may have been edited, closed or reopened (its tree deleted):
    // answer only for the very document and version the findings are of.
    const current = () => docs?.get(uri) === doc && !!doc.tree && state.results?.version === doc.version;
    if (state.results?.version !== doc.version) await validate(doc, true);
    if (!current()) return null;
    const settings = await settingsFor(uri);
    const results = state.results;
    if (!current() || !results || !doc.tree) return null;
    const t = engine.documentTarget(uri, doc.text, settings);
    const file = { path: path || toPath(uri) || uri, uri, text: doc.text, tree: doc.tree, findings: results.findings };
    const report = documentReport(engine.db, file, t.kernels);
    const target = t.settings.targetKernels;
    const arches = [...new Set(t.kernels.map((k) => k.arch))].sort();
    const markdown = requirementsMarkdown(report.programs, arches, target, t.kernels.length);
    return { uri, target, targetKernels: t.kernels.length, ...report, markdown };
  };

  connection.onRequest(REPORT_REQUEST, async (p: ReportParams): Promise<ReportResult | null> => {
    if (typeof p?.uri !== 'string' || (p.path !== undefined && typeof p.path !== 'string')) throw invalid(REPORT_REQUEST, p);
    try {
      return await reportFor(p.uri, p.path);
    } catch (e) {
      connection.console.error(`report: ${(e as Error).stack ?? e}`);
      return null;
    }
  });

  connection.onRequest('textDocument/codeLens', async (p): Promise<CodeLens[]> => {
    const uri = documentUri(p);
    if (uri === undefined) throw invalid('textDocument/codeLens', p);
    try {
      const r = await reportFor(uri);
      if (!r) return [];
      return r.grid.map((g, i) => ({
        range: { start: { line: g.line, character: 0 }, end: { line: g.line, character: 0 } },
        command: {
          title: programSummary(r.programs[i], g),
          command: 'ebpfPortability.showReport',
          arguments: [uri, g.function],
        },
      }));
    } catch (e) {
      connection.console.error(`codeLens: ${(e as Error).stack ?? e}`);
      return [];
    }
  });

  // Check This Machine and Import Kernel BTF; an import reloads the database and analyses again.
  registerMachineRequests(connection, {
    db: async () => {
      await startup;
      return engine?.db;
    },
    reload: () => {
      if (!engine || !cParser) return;
      const parser = cParser;
      const old = engine;
      engine = new Engine(KernelDb.open(), (text) => parser.parseText(text));
      engine.overlay = old.overlay;
      old.dispose();
      objects.clear();
      settingsCache.clear();
      for (const uri of states.keys()) {
        schedule(uri);
        void runObjectPass(uri);
      }
    },
  });

  connection.onShutdown(() => {
    engine?.dispose();
  });

  connection.listen();
}
