// JSON request bodies for the API. A body must be JSON (415 otherwise, before anything acts on
// it), and a body that cannot be read (compressed garbage, an unknown Content-Encoding, broken
// JSON, too large) is the client's mistake: a 4xx with a clear message, never a 500.
import express, { type RequestHandler } from 'express';
import { BadInputError } from './http-errors.js';

/** Whether the request carries a body (a length above zero, or a chunked one). */
function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = Number(headers['content-length'] ?? 0);
  return Number.isFinite(length) && length > 0;
}

export function jsonBody(opts: { limit: string }): RequestHandler[] {
  const parse = express.json({ limit: opts.limit, strict: true });
  const onlyJson: RequestHandler = (req, _res, next) => {
    if (hasBody(req.headers) && !req.is('application/json')) {
      next(new BadInputError(415, 'unsupported_media_type', `Send the request body as JSON (Content-Type: application/json), not ${req.get('content-type') ?? 'untyped'}`));
      return;
    }
    next();
  };
  const read: RequestHandler = (req, res, next) => {
    parse(req, res, (err?: unknown) => next(err === undefined ? undefined : readError(err, req.get('content-encoding') ?? 'identity')));
  };
  return [onlyJson, read];
}

function readError(err: unknown, encoding: string): BadInputError {
  const e = err as { type?: string; message?: string; status?: number };
  switch (e.type) {
    case 'entity.too.large':
      return new BadInputError(413, 'too_large', 'Request body too large');
    case 'entity.parse.failed':
      return new BadInputError(400, 'invalid_json', 'Request body is not valid JSON');
    case 'encoding.unsupported':
      return new BadInputError(415, 'unsupported_encoding', `Unsupported Content-Encoding: ${encoding} (use gzip, deflate, br or none)`);
    case 'charset.unsupported':
      return new BadInputError(415, 'unsupported_charset', 'Unsupported charset in Content-Type (use utf-8)');
    case 'request.aborted':
    case 'request.size.invalid':
      return new BadInputError(400, 'incomplete_body', 'The request body ended before its announced length');
    default:
      // zlib's and brotli's own errors: the bytes are not what the header says they are.
      return new BadInputError(400, 'bad_encoding', `The request body could not be decoded as its Content-Encoding: ${encoding} says (${e.message ?? 'corrupt data'})`);
  }
}
