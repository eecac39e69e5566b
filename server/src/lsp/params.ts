/**
 * The shapes of what clients send, checked where it arrives. The protocol library hands a
 * message's params over as they were decoded: a client with a bug (or a hand-written one) may send
 * a document without a URI, a version that is not a number, a position of -1 or a change whose
 * text is not a string. A notification so malformed is dropped (the output channel says so once
 * per method) and a request is answered with an error, instead of the fault surfacing later, in
 * an asynchronous step whose exception would end the process.
 */

import { headOf } from '../../../kernel-db/src/strings';

/** An LSP `uinteger`. */
function uinteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 2 ** 31 - 1;
}

/**
 * A document version. LSP says `integer`, but the server only hands it back: any finite number is
 * taken (a client may count in timestamps), and `null`, which LSP 3.15 allowed in a change.
 */
function version(x: unknown): x is number | null {
  return x === null || (typeof x === 'number' && Number.isFinite(x));
}

function record(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export interface WirePosition {
  line: number;
  character: number;
}

export interface WireRange {
  start: WirePosition;
  end: WirePosition;
}

/** A position: two `uinteger`s. */
export function isPosition(x: unknown): x is WirePosition {
  return record(x) && uinteger(x.line) && uinteger(x.character);
}

/** A range: two positions (an end before its start is the client's to answer for, not a shape fault). */
export function isRange(x: unknown): x is WireRange {
  return record(x) && isPosition(x.start) && isPosition(x.end);
}

/** `params.textDocument.uri` when it is a string. */
export function documentUri(params: unknown): string | undefined {
  if (!record(params) || !record(params.textDocument)) return undefined;
  const uri = params.textDocument.uri;
  return typeof uri === 'string' ? uri : undefined;
}

/** `didOpen`'s params: a URI, a version and the text. */
export function isOpen(params: unknown): params is { textDocument: { uri: string; version: number; text: string } } {
  if (!record(params) || !record(params.textDocument)) return false;
  const d = params.textDocument;
  return typeof d.uri === 'string' && version(d.version) && d.version !== null && typeof d.text === 'string';
}

/**
 * `didChange`'s params: a URI, a version, and changes each with a text and a range (none, or
 * `null`, for the whole text).
 */
export function isChange(params: unknown): params is {
  textDocument: { uri: string; version: number };
  contentChanges: Array<{ text: string; range?: WireRange | null }>;
} {
  if (!record(params) || !record(params.textDocument)) return false;
  const d = params.textDocument;
  if (typeof d.uri !== 'string' || !version(d.version) || !Array.isArray(params.contentChanges)) return false;
  return params.contentChanges.every((c) => record(c) && typeof c.text === 'string' && (c.range == null || isRange(c.range)));
}

/** A request's params about a place in a document: its URI and a position. */
export function isDocumentPosition(params: unknown): params is { textDocument: { uri: string }; position: WirePosition } {
  return documentUri(params) !== undefined && isPosition((params as Record<string, unknown>).position);
}

/** `codeAction`'s params: a URI, a range, and a context whose `only`, if any (`null` is none), lists strings. */
export function isCodeActionParams(
  params: unknown,
): params is { textDocument: { uri: string }; range: WireRange; context: { only?: string[] | null } } {
  if (documentUri(params) === undefined) return false;
  const p = params as Record<string, unknown>;
  if (!isRange(p.range) || !record(p.context)) return false;
  const only = p.context.only;
  return only == null || (Array.isArray(only) && only.every((k) => typeof k === 'string'));
}

/** A short sample of malformed params for a message: their JSON, cut past 120 characters. */
export function sample(params: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(params);
  } catch {
    text = undefined;
  }
  if (text === undefined) return typeof params;
  return text.length <= 120 ? text : `${headOf(text, 119)}…`;
}
