/**
 * The bytes of outgoing messages on a stream transport (`--stdio`).
 *
 * - Every edit publishes the whole document's diagnostics again: on the bench's 2,000-line file
 *   that is ~310 diagnostics and ~210 KB of JSON, of which an edit changes a few. Each published
 *   diagnostic is encoded once (it is the same object from one publish to the next while its
 *   finding is unchanged, see `publishedDiagnostic`), and a publish joins the stored bytes.
 * - The JSON is ASCII: characters past U+007F are written as `\uXXXX` escapes, as JSON allows.
 *   Messages use a few (– and …); one of them makes the whole text a client decodes take the slow
 *   path of UTF-8 decoding (~0.7 ms for such a publish against ~0.1 ms in ASCII), on every edit.
 *
 * The result parses to the very message `JSON.stringify` writes, and is its bytes wherever the
 * message is ASCII.
 */
import type { Diagnostic } from 'vscode-languageserver';
import { OwnedValue } from '../analysis/memo';

const PUBLISH = 'textDocument/publishDiagnostics';
const COMMA = Buffer.from(',');

const encoded = new OwnedValue<Diagnostic, Buffer>({
  name: 'wire.diagnostic',
  owner: 'a published diagnostic (never changed once published)',
  key: '— (its JSON, in ASCII)',
});

/** `msg` as ASCII JSON, the diagnostics of a publish from their stored bytes. */
export function encodeMessage(msg: object): Buffer {
  const m = msg as { method?: unknown; params?: { diagnostics?: unknown } };
  const list = m.method === PUBLISH ? m.params?.diagnostics : undefined;
  if (!Array.isArray(list) || list.length === 0) return ascii(msg);
  // The message with an empty list, cut where the list goes: `"diagnostics":[]` can only be that
  // key (inside a JSON string every `"` follows a backslash), and it is there once.
  const shell = asciiJson({ ...m, params: { ...m.params, diagnostics: [] } });
  const at = shell.indexOf('"diagnostics":[]') + '"diagnostics":['.length;
  const parts: Buffer[] = [Buffer.from(shell.slice(0, at), 'latin1')];
  for (let i = 0; i < list.length; i++) {
    const d = list[i] as Diagnostic;
    if (i > 0) parts.push(COMMA);
    parts.push(encoded.get(d, () => ascii(d)));
  }
  parts.push(Buffer.from(shell.slice(at), 'latin1'));
  return Buffer.concat(parts);
}

function ascii(value: unknown): Buffer {
  return Buffer.from(asciiJson(value), 'latin1');
}

/** `JSON.stringify(value)` with every character past U+007F escaped. */
function asciiJson(value: unknown): string {
  const s = JSON.stringify(value);
  // Outside strings JSON text is ASCII, so only characters in strings are escaped.
  return NON_ASCII.test(s) ? s.replace(NON_ASCII_ALL, unicodeEscape) : s;
}

const NON_ASCII = /[\u0080-\uffff]/;
const NON_ASCII_ALL = /[\u0080-\uffff]/g;
const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
