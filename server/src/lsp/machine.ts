/**
 * The editor's machine requests: Check This Machine (`ebpfPortability/doctor`, the CLI's `doctor`
 * checks from driver/doctor.ts) and Import Kernel BTF (`ebpfPortability/importDefaults`, the name
 * and version an import would take; `ebpfPortability/importKernel`, the import itself into the
 * store `ebpf-portability db add` writes). An import can be cancelled: the request's cancellation
 * is looked at between the import's steps and last before the store is written, so a cancelled
 * import leaves the store as it was. After an import the server reloads the kernel database.
 */
import { type CancellationToken, type Connection, ErrorCodes, ResponseError } from './connection';
import { sample } from './params';
import type { KernelDb } from '../../../kernel-db/src/query/db';
import type { KernelMeta } from '../../../kernel-db/src/store/schema';
import { importDefaults, RUNNING_KERNEL_BTF } from '../../../kernel-db/src/query/user';
import { type DoctorReport, doctorReport } from '../driver/doctor';

export const DOCTOR_REQUEST = 'ebpfPortability/doctor';
export interface DoctorResult {
  readonly report: DoctorReport;
  /** The running kernel's BTF when it is there (what "Add this machine's kernel" imports), else null. */
  readonly btf: string | null;
  /** The name that import takes, and whether a kernel of that name is imported already. */
  readonly name: string;
  readonly imported: boolean;
}

export const IMPORT_DEFAULTS_REQUEST = 'ebpfPortability/importDefaults';
export const IMPORT_KERNEL_REQUEST = 'ebpfPortability/importKernel';
export interface ImportParams {
  /** A raw BTF blob, an ELF vmlinux, xz/gzip of either, or a BTFHub `.btf.tar.xz`. */
  readonly path: string;
  readonly name?: string;
  readonly version?: string;
  /** Replace an imported kernel of the same name. */
  readonly force?: boolean;
  /** The architecture (default: the one the file name spells, else what the BTF says). */
  readonly arch?: string;
}

/** What the machine requests need of the server. */
export interface MachineHost {
  /** The kernel database in use, once started. */
  db(): Promise<KernelDb | undefined>;
  /** Reloads the kernel database (an import added a kernel) and analyses the open documents again. */
  reload(): void;
  /** Where the doctor reads the machine's files (`/`; tests pass a fixture). */
  readonly root?: string;
}

/** Registers the machine requests on `connection`. */
export function registerMachineRequests(connection: Connection, host: MachineHost): void {
  connection.onRequest(DOCTOR_REQUEST, async (): Promise<DoctorResult | null> => {
    const db = await host.db();
    if (!db) return null;
    const report = doctorReport(host.root ?? '/', db.facts.configs);
    const btfOk = report.items.some((i) => i.what === 'BTF' && i.status === 'ok');
    const { name } = importDefaults(RUNNING_KERNEL_BTF);
    return { report, btf: btfOk ? RUNNING_KERNEL_BTF : null, name, imported: db.kernels.some((k) => k.user && k.name === name) };
  });

  connection.onRequest(IMPORT_DEFAULTS_REQUEST, (p: { path: string }) => {
    if (typeof p?.path !== 'string')
      throw new ResponseError(ErrorCodes.InvalidParams, `malformed ${IMPORT_DEFAULTS_REQUEST} params: ${sample(p)}`);
    return importDefaults(p.path);
  });

  connection.onRequest(IMPORT_KERNEL_REQUEST, async (p: ImportParams, token: CancellationToken): Promise<KernelMeta> => {
    const text = (k: keyof ImportParams) => p[k] === undefined || typeof p[k] === 'string';
    if (
      typeof p?.path !== 'string' ||
      !text('name') ||
      !text('version') ||
      !text('arch') ||
      (p.force !== undefined && typeof p.force !== 'boolean')
    )
      throw new ResponseError(ErrorCodes.InvalidParams, `malformed ${IMPORT_KERNEL_REQUEST} params: ${sample(p)}`);
    const db = await host.db();
    if (!db?.user) throw new ResponseError(ErrorCodes.RequestFailed, 'the kernel database is not available');
    // Between steps the event loop runs, so a cancellation sent meanwhile is seen.
    const checkpoint = async () => {
      await new Promise((r) => setImmediate(r));
      if (token.isCancellationRequested) throw new ResponseError(ErrorCodes.RequestCancelled, 'the import was cancelled');
    };
    // A file name that spells an architecture says it (the BTF of some kernels does not).
    const arch = p.arch ?? importDefaults(p.path).arch;
    let meta: KernelMeta;
    try {
      meta = await db.user.add(p.path, db.facts, (n) => db.kernels.some((k) => !k.user && k.name === n), {
        ...(p.name ? { name: p.name } : {}),
        ...(p.version ? { version: p.version } : {}),
        ...(p.force ? { force: true } : {}),
        ...(arch ? { arch } : {}),
        checkpoint,
      });
    } catch (e) {
      if (e instanceof ResponseError) throw e;
      throw new ResponseError(ErrorCodes.RequestFailed, (e as Error).message);
    }
    host.reload();
    return meta;
  });
}
