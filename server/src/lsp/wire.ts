/**
 * The bytes of outgoing messages on a stream transport (`--stdio`). Every edit publishes the whole
 * document's diagnostics again: on the bench's 2,000-line file that is ~310 diagnostics and ~210 KB
 * of JSON, of which an edit changes a few. Each published diagnostic is encoded once (it is the
 * same object from one publish to the next while its finding is unchanged, see
 * `publishedDiagnostic`), and a publish joins the stored bytes. Every other message is encoded as
 * vscode-jsonrpc's own encoder does. The result is byte for byte what `JSON.stringify` gives for
 * the whole message.
 */
import type { Diagnostic } from 'vscode-languageserver';
import type { ContentTypeEncoder, Message } from 'vscode-languageserver/node';
import { OwnedValue } from '../analysis/memo';

const PUBLISH = 'textDocument/publishDiagnostics';
const COMMA = Buffer.from(',');

const encoded = new OwnedValue<Diagnostic, Buffer>({
  name: 'wire.diagnostic',
  owner: 'a published diagnostic (never changed once published)',
  key: '— (its JSON in UTF-8)',
});

/** `msg` as UTF-8 JSON, the diagnostics of a publish from their stored bytes. */
export function encodeMessage(msg: Message): Buffer {
  const m = msg as { method?: unknown; params?: { diagnostics?: unknown } };
  const list = m.method === PUBLISH ? m.params?.diagnostics : undefined;
  if (!Array.isArray(list) || list.length === 0) return Buffer.from(JSON.stringify(msg), 'utf8');
  // The message with an empty list, cut where the list goes: `"diagnostics":[]` can only be that
  // key (inside a JSON string every `"` follows a backslash), and it is there once.
  const shell = JSON.stringify({ ...m, params: { ...m.params, diagnostics: [] } });
  const at = shell.indexOf('"diagnostics":[]') + '"diagnostics":['.length;
  const parts: Buffer[] = [Buffer.from(shell.slice(0, at), 'utf8')];
  for (let i = 0; i < list.length; i++) {
    const d = list[i] as Diagnostic;
    if (i > 0) parts.push(COMMA);
    parts.push(encoded.get(d, () => Buffer.from(JSON.stringify(d), 'utf8')));
  }
  parts.push(Buffer.from(shell.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

/** vscode-jsonrpc's JSON encoder with {@link encodeMessage} (the writer's charset is UTF-8). */
export const wireEncoder: ContentTypeEncoder = {
  name: 'application/json',
  encode: (msg) => {
    try {
      return Promise.resolve(encodeMessage(msg as Message));
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
