import { ClientError } from './errors';

/**
 * A decoded bencode value. Byte strings stay bytes (`Buffer`): bencode does not say they are text.
 * Dictionaries are `Map`s keyed by the key's bytes read as latin1 (`'binary'`), one character per
 * byte, so binary keys such as raw info hashes survive: `Buffer.from(key, 'latin1')` gives the
 * bytes back.
 */
export type BValue = number | Buffer | BValue[] | Map<string, BValue>;

/** What `bencode` accepts. Strings are encoded as UTF-8; `undefined` object properties are skipped. */
export type BEncodable =
  | number
  | string
  | Uint8Array
  | readonly BEncodable[]
  | ReadonlyMap<string | Uint8Array, BEncodable>
  | { readonly [key: string]: BEncodable | undefined };

/** Deepest nesting of lists/dicts `bdecode` accepts unless told otherwise. */
export const BDECODE_MAX_DEPTH = 64;

/**
 * Encodes a value. Dictionary keys are sorted as raw bytes, as BEP 3 requires.
 * Throws `TypeError` for values bencode cannot hold (non-safe-integer numbers, other types,
 * duplicate dictionary keys): those are programming errors, not client errors.
 * Not the hot path: announce and scrape responses have hand-written encoders (http-response.ts).
 */
export function bencode(value: BEncodable): Buffer {
  const parts: Buffer[] = [];
  encodeInto(value, parts, 0);
  return Buffer.concat(parts);
}

function encodeInto(value: unknown, out: Buffer[], depth: number): void {
  if (depth > 1000) throw new TypeError('bencode: value nested too deeply (cycle?)');
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`bencode: not a safe integer: ${value}`);
    out.push(Buffer.from(`i${value}e`, 'latin1'));
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    out.push(Buffer.from(`${bytes.length}:`, 'latin1'), bytes);
  } else if (value instanceof Uint8Array) {
    out.push(Buffer.from(`${value.length}:`, 'latin1'), Buffer.from(value.buffer, value.byteOffset, value.length));
  } else if (Array.isArray(value)) {
    out.push(Buffer.from('l', 'latin1'));
    for (const item of value) encodeInto(item, out, depth + 1);
    out.push(Buffer.from('e', 'latin1'));
  } else if (value instanceof Map) {
    const entries: Array<[Buffer, unknown]> = [];
    for (const [k, v] of value) {
      if (typeof k === 'string') entries.push([Buffer.from(k, 'utf8'), v]);
      else if (k instanceof Uint8Array) entries.push([Buffer.from(k.buffer, k.byteOffset, k.length), v]);
      else throw new TypeError('bencode: dictionary keys must be strings or bytes');
    }
    encodeDict(entries, out, depth);
  } else if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    const entries: Array<[Buffer, unknown]> = [];
    for (const k of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) entries.push([Buffer.from(k, 'utf8'), v]);
    }
    encodeDict(entries, out, depth);
  } else {
    throw new TypeError(`bencode: cannot encode ${value === null ? 'null' : typeof value}`);
  }
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function encodeDict(entries: Array<[Buffer, unknown]>, out: Buffer[], depth: number): void {
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  out.push(Buffer.from('d', 'latin1'));
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i];
    if (i > 0 && entries[i - 1][0].equals(k)) throw new TypeError('bencode: duplicate dictionary key');
    out.push(Buffer.from(`${k.length}:`, 'latin1'), k);
    encodeInto(v, out, depth + 1);
  }
  out.push(Buffer.from('e', 'latin1'));
}

/**
 * Decodes exactly one bencoded value filling all of `buf`.
 * Strict: integers must be canonical (`i0e`, no `i-0e`, no leading zeros) and safe integers,
 * string lengths have no leading zeros, dictionary keys are unique (any order is accepted),
 * nesting is at most `maxDepth`, and nothing may follow the value. Any violation is a
 * `ClientError`; nothing else is thrown. Byte strings are views into `buf` (no copy).
 */
export function bdecode(buf: Buffer, maxDepth: number = BDECODE_MAX_DEPTH): BValue {
  const d = new Decoder(buf, maxDepth);
  const value = d.value(0);
  if (d.pos !== buf.length) throw new ClientError(`bencode: trailing data at offset ${d.pos}`);
  return value;
}

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_D = 0x64;
const CH_E = 0x65;
const CH_I = 0x69;
const CH_L = 0x6c;

class Decoder {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly maxDepth: number,
  ) {}

  private fail(what: string): never {
    throw new ClientError(`bencode: ${what} at offset ${this.pos}`);
  }

  value(depth: number): BValue {
    const buf = this.buf;
    if (this.pos >= buf.length) this.fail('unexpected end of data');
    const c = buf[this.pos];
    if (c === CH_I) return this.integer();
    if (c >= CH_0 && c <= CH_9) return this.bytes();
    if (c === CH_L || c === CH_D) {
      if (depth >= this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
      this.pos++;
      if (c === CH_L) {
        const list: BValue[] = [];
        while (this.peekNotEnd()) list.push(this.value(depth + 1));
        this.pos++;
        return list;
      }
      const dict = new Map<string, BValue>();
      while (this.peekNotEnd()) {
        if (buf[this.pos] < CH_0 || buf[this.pos] > CH_9) this.fail('dictionary key is not a string');
        const key = this.bytes().toString('latin1');
        if (dict.has(key)) this.fail('duplicate dictionary key');
        dict.set(key, this.value(depth + 1));
      }
      this.pos++;
      return dict;
    }
    this.fail('unexpected byte');
  }

  private peekNotEnd(): boolean {
    if (this.pos >= this.buf.length) this.fail('unexpected end of data');
    return this.buf[this.pos] !== CH_E;
  }

  private integer(): number {
    const buf = this.buf;
    let p = this.pos + 1;
    let negative = false;
    if (p < buf.length && buf[p] === CH_MINUS) {
      negative = true;
      p++;
    }
    const start = p;
    let n = 0;
    while (p < buf.length && buf[p] >= CH_0 && buf[p] <= CH_9) {
      // MAX_SAFE_INTEGER has 16 digits: a 17th means out of range, and stops huge inputs early.
      if (p - start >= 16) this.fail('integer out of range');
      n = n * 10 + (buf[p] - CH_0);
      p++;
    }
    const digits = p - start;
    if (p >= buf.length) this.fail('unterminated integer');
    if (buf[p] !== CH_E || digits === 0) this.fail('malformed integer');
    if (digits > 1 && buf[start] === CH_0) this.fail('integer with leading zero');
    if (negative && n === 0) this.fail('negative zero');
    if (!Number.isSafeInteger(n)) this.fail('integer out of range');
    this.pos = p + 1;
    return negative ? -n : n;
  }

  private bytes(): Buffer {
    const buf = this.buf;
    let p = this.pos;
    const start = p;
    let len = 0;
    while (p < buf.length && buf[p] >= CH_0 && buf[p] <= CH_9) {
      len = len * 10 + (buf[p] - CH_0);
      if (len > buf.length) this.fail('string longer than the data');
      p++;
    }
    if (p >= buf.length || buf[p] !== CH_COLON) this.fail('malformed string length');
    if (p - start > 1 && buf[start] === CH_0) this.fail('string length with leading zero');
    p++;
    if (len > buf.length - p) this.fail('string longer than the data');
    this.pos = p + len;
    return buf.subarray(p, p + len);
  }
}
