/**
 * Calls in a file: every call expression of each function body, the call sites of each local
 * function and who calls whom. Computed once per file model (see the cache list in
 * ARCHITECTURE.md) and shared by the program contexts, the guard propagation into helper
 * functions and the rules.
 */
import { OwnedCache } from './memo';
import type { Node } from 'web-tree-sitter';
import type { FileModel, FunctionInfo } from './file';

/** A call of a local function. */
export interface CallSite {
  readonly caller: FunctionInfo;
  readonly node: Node;
}

/** Every call expression inside `body`. */
export function callsIn(body: Node): Node[] {
  return body.descendantsOfType('call_expression').filter((c): c is Node => !!c);
}

/** The called identifier of a call expression, if it is a plain name. */
export function calleeName(call: Node, text: string): string | undefined {
  const fn = call.childForFieldName('function');
  return fn?.type === 'identifier' ? text.slice(fn.startIndex, fn.endIndex) : undefined;
}

/**
 * The calls between the functions of one file. Who calls whom comes from the names each body's
 * text calls (`FunctionInfo.calls`: names followed by `(`); the call nodes of a callee are found
 * in the tree only when asked for, and only in the bodies of its callers.
 */
export class CallGraph {
  private readonly sites = new Map<string, CallSite[]>();
  private readonly callerSets = new Map<FunctionInfo, Set<FunctionInfo>>();

  constructor(readonly model: FileModel) {
    const byName = new Map(model.functions.map((f) => [f.name, f]));
    for (const caller of model.functions) {
      for (const name of caller.calls) {
        const callee = byName.get(name);
        if (!callee || callee === caller) continue;
        let set = this.callerSets.get(callee);
        if (!set) this.callerSets.set(callee, (set = new Set()));
        set.add(caller);
      }
    }
  }

  /** Calls of the local function `name` from other functions, in source order. */
  callSitesOf(name: string): readonly CallSite[] {
    let list = this.sites.get(name);
    if (list) return list;
    list = [];
    const callee = this.model.functions.find((f) => f.name === name);
    for (const caller of callee ? [...this.callersOf(callee)].sort((a, b) => a.node.startIndex - b.node.startIndex) : []) {
      for (const node of callsIn(caller.body!)) if (calleeName(node, this.model.text) === name) list.push({ caller, node });
    }
    this.sites.set(name, list);
    return list;
  }

  /** The functions whose bodies call `fn`. */
  callersOf(fn: FunctionInfo): ReadonlySet<FunctionInfo> {
    return this.callerSets.get(fn) ?? new Set();
  }
}

const graphs = new OwnedCache<FileModel, CallGraph>({ name: 'calls.graph', owner: 'file model', key: '—' });

/** The call graph of a file model (built on first use, kept as long as the model). */
export function callGraph(model: FileModel): CallGraph {
  return graphs.get(model, '', () => new CallGraph(model));
}

const localNamesCache = new OwnedCache<FileModel, ReadonlySet<string>>({ name: 'calls.localNames', owner: 'file model', key: '—' });

/** Names the file itself defines as functions or macros: calls to them are not helper or kfunc calls. */
export function localNames(model: FileModel): ReadonlySet<string> {
  return localNamesCache.get(model, '', () => {
    const s = new Set(model.functions.map((f) => f.name));
    for (const d of model.directives) {
      const m = /^#[ \t]*define[ \t]+([A-Za-z_]\w*)/.exec(d.text);
      if (m) s.add(m[1]);
    }
    return s;
  });
}
