/*
 * Client software from a BitTorrent peer id. Clients put their name and version at the start of
 * the 20-byte id in one of a few conventions (the rest is random):
 * - Azureus style: '-' + two-character client code + four version characters + '-', as in
 *   '-qB4650-' (qBittorrent 4.6.5) or '-TR4060-' (Transmission 4.0.6);
 * - Shadow style: one letter + up to five version characters (0-9, A-Z = 10-35, a-z = 36-61,
 *   '.' = 62) padded with '-', as in 'S58B-----' (Shadow 5.8.11);
 * - Mainline style: one or two letters + decimal numbers each followed by '-', as in 'M7-12-1-'
 *   (BitTorrent 7.12.1) or 'A2-1-37-0-' (aria2 1.37.0);
 * - a few others by a fixed prefix ('exbc' BitComet, 'XBT' XBT, 'OP' Opera).
 * A client is kept as its style, its code (ASCII, at most 4 bytes) and up to four version numbers
 * (0-255 each), so that an event stores it in 9 bytes and a code we do not know yet still counts
 * as itself. clientName() gives the name analysts read.
 */

export type ClientStyle = 'unknown' | 'azureus' | 'shadow' | 'mainline' | 'other';

/** Style codes as stored in an event (STYLE_CODES[style]). */
export const STYLE_CODES: Record<ClientStyle, number> = { unknown: 0, azureus: 1, shadow: 2, mainline: 3, other: 4 };
export const STYLES: readonly ClientStyle[] = ['unknown', 'azureus', 'shadow', 'mainline', 'other'];

export interface ClientSoftware {
  style: ClientStyle;
  /** the client's code as in the peer id ('qB', 'S', 'M', 'exbc'); '' when unknown */
  code: string;
  /** up to four numbers, 0-255 each; [] when none could be read */
  version: number[];
}

export const UNKNOWN_CLIENT: ClientSoftware = Object.freeze({ style: 'unknown', code: '', version: Object.freeze([]) as unknown as number[] });

/** Names of Azureus-style codes. */
const AZUREUS: Record<string, string> = {
  qB: 'qBittorrent',
  TR: 'Transmission',
  LT: 'libtorrent (Rasterbar)',
  lt: 'rTorrent (libTorrent)',
  DE: 'Deluge',
  UT: 'µTorrent',
  UM: 'µTorrent Mac',
  UW: 'µTorrent Web',
  BT: 'BitTorrent',
  BW: 'BitTorrent Web',
  BC: 'BitComet',
  BI: 'BiglyBT',
  AZ: 'Vuze',
  KT: 'KTorrent',
  WW: 'WebTorrent',
  WD: 'WebTorrent Desktop',
  FD: 'Free Download Manager',
  PI: 'PicoTorrent',
  FL: 'Folx',
  FW: 'FrostWire',
  XL: 'Xunlei',
  SD: 'Thunder',
  TL: 'Tribler',
  HL: 'Halite',
  BF: 'BitFlu',
  LP: 'Lphant',
  MO: 'MonoTorrent',
  AG: 'Ares',
  A2: 'aria2',
  TIX: 'Tixati',
  SP: 'BitSpirit',
  BN: 'Baidu Netdisk',
  '7T': 'aTorrent',
  PB: 'Pando',
  RT: 'Retriever',
  ZO: 'Zona',
  FX: 'Flashget',
  GR: 'GetRight',
  IL: 'iLivid',
  TT: 'TuoTu',
};
const SHADOW: Record<string, string> = {
  A: 'ABC',
  O: 'Osprey Permaseed',
  Q: 'BTQueue',
  R: 'Tribler',
  S: 'Shadow',
  T: 'BitTornado',
  U: 'UPnP NAT Bit Torrent',
};
const MAINLINE: Record<string, string> = {
  M: 'BitTorrent (Mainline)',
  Q: 'Queen Bee',
  A2: 'aria2',
};
const OTHER: Record<string, string> = { exbc: 'BitComet', XBT: 'XBT Client', OP: 'Opera' };

const A0 = 0x30; // '0'

/** 0-9, A-Z (10-35), a-z (36-61), '.' (62); -1 for anything else */
function shadowDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x5a) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 36;
  if (c === 0x2e) return 62;
  return -1;
}
const isAlnum = (c: number) => shadowDigit(c) >= 0 && c !== 0x2e;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** The four version characters of an Azureus-style id, by the client's own convention. */
function azureusVersion(code: string, id: Uint8Array): number[] {
  const c = [id[3], id[4], id[5], id[6]];
  const d = c.map(shadowDigit);
  // (0-9 and A-Z; a lower-case letter only last, as a release mark)
  if (d.slice(0, 3).some((v) => v < 0 || v > 35) || d[3] < 0 || d[3] > 61) return [];
  switch (code) {
    case 'TR':
      // Transmission: 1.x and 2.x as a.bc ('-TR2940-' 2.94), 3.0 on as a.b.c ('-TR4060-' 4.0.6);
      // the fourth character marks a beta or a build from git
      return d[0] < 3 ? [d[0], d[1] * 10 + d[2]] : [d[0], d[1], d[2]];
    case 'WW':
    case 'WD':
    case 'BC':
      // two decimal numbers of two digits each ('-WW0105-' 1.5, '-BC0150-' 1.50)
      if (!c.every(isDigit)) return [];
      return [d[0] * 10 + d[1], d[2] * 10 + d[3]];
    case 'UT':
    case 'UM':
    case 'UW':
    case 'DE':
      // three version characters, then a letter for the release kind ('-UT355W-', '-DE211s-')
      return [d[0], d[1], d[2]];
    default:
      // each character a number (hexadecimal beyond 9: '-qB46A0-' 4.6.10), a lower-case last
      // character a release mark
      return d[3] > 35 ? [d[0], d[1], d[2]] : d;
  }
}

/** The client software named at the start of a 20-byte peer id (UNKNOWN_CLIENT if none). */
export function decodeClient(id: Uint8Array): ClientSoftware {
  if (id.length < 8) return UNKNOWN_CLIENT;
  // Azureus style
  if (id[0] === 0x2d && id[7] === 0x2d && isAlnum(id[1]) && isAlnum(id[2])) {
    const code = String.fromCharCode(id[1], id[2]);
    return { style: 'azureus', code, version: azureusVersion(code, id) };
  }
  // fixed prefixes
  if (id[0] === 0x65 && id[1] === 0x78 && id[2] === 0x62 && id[3] === 0x63) {
    // 'exbc' + major + minor as bytes
    return { style: 'other', code: 'exbc', version: [id[4], id[5]] };
  }
  if (id[0] === 0x58 && id[1] === 0x42 && id[2] === 0x54 && isDigit(id[3]) && isDigit(id[4]) && isDigit(id[5])) {
    return { style: 'other', code: 'XBT', version: [id[3] - A0, id[4] - A0, id[5] - A0] };
  }
  if (id[0] === 0x4f && id[1] === 0x50 && id.subarray(2, 6).every(isDigit)) {
    // 'OP' + a four-digit build
    const build = (id[2] - A0) * 1000 + (id[3] - A0) * 100 + (id[4] - A0) * 10 + (id[5] - A0);
    return { style: 'other', code: 'OP', version: [build >> 8, build & 0xff] };
  }
  // Mainline style: one or two letters (or a letter and a digit), then numbers each ended by '-'
  if (isLetter(id[0])) {
    const mainline = mainlineVersion(id);
    if (mainline) return mainline;
    const shadow = shadowVersion(id);
    if (shadow) return shadow;
  }
  return UNKNOWN_CLIENT;
}

function mainlineVersion(id: Uint8Array): ClientSoftware | undefined {
  // a two-character code only when it is a known one ('A2-1-37-0-' is aria2 1.37.0, where 'A'
  // would read as a client 'A' of version 2.1.37.0)
  const two = String.fromCharCode(id[0], id[1]);
  for (const codeLength of two in MAINLINE ? [2, 1] : [1]) {
    // (a two-character code is followed by a '-')
    let i = codeLength === 2 && id[2] === 0x2d ? 3 : codeLength;
    const version: number[] = [];
    while (i < id.length && version.length < 4 && isDigit(id[i])) {
      let n = 0;
      let digits = 0;
      while (i < id.length && isDigit(id[i]) && digits < 3) {
        n = n * 10 + id[i] - A0;
        i++;
        digits++;
      }
      // (BEP 20: Mainline's prefix is 8 bytes, 'M4-3-6--'; aria2's longer, 'A2-1-37-0-')
      if (id[i] !== 0x2d || n > 255 || i + 1 > (codeLength === 2 ? 10 : 8)) break;
      version.push(n);
      i++;
    }
    // at least two numbers, each ended by '-'
    if (version.length >= 2) {
      return { style: 'mainline', code: String.fromCharCode(...id.subarray(0, codeLength)), version };
    }
  }
  return undefined;
}

function shadowVersion(id: Uint8Array): ClientSoftware | undefined {
  // one letter, one to five version characters, then '-' up to byte 8 at least
  const version: number[] = [];
  let i = 1;
  while (i < 6 && id[i] !== 0x2d) {
    const d = shadowDigit(id[i]);
    if (d < 0) return undefined;
    version.push(d);
    i++;
  }
  if (version.length === 0) return undefined;
  for (let j = i; j < 8; j++) if (id[j] !== 0x2d) return undefined;
  return { style: 'shadow', code: String.fromCharCode(id[0]), version };
}

/** A client's display name and version, e.g. 'qBittorrent 4.6.5', 'Azureus-style "Xy" 1.2.3'. */
export function clientName(c: ClientSoftware): string {
  let name: string | undefined;
  if (c.style === 'azureus') name = AZUREUS[c.code] ?? `Azureus-style "${c.code}"`;
  else if (c.style === 'shadow') name = SHADOW[c.code] ?? `Shadow-style "${c.code}"`;
  else if (c.style === 'mainline') name = MAINLINE[c.code] ?? `Mainline-style "${c.code}"`;
  else if (c.style === 'other') name = OTHER[c.code] ?? `"${c.code}"`;
  else return 'unknown';
  const v = c.version.slice();
  // a fourth number that is 0 says nothing ('-qB4650-' is qBittorrent 4.6.5)
  if (v.length === 4 && v[3] === 0) v.pop();
  if (c.style === 'other' && c.code === 'OP') return `${name} build ${(v[0] << 8) | v[1]}`;
  // BitComet's minor version has two digits ('-BC0204-' is 2.04)
  if (c.style === 'azureus' && c.code === 'BC' && v.length === 2) return `${name} ${v[0]}.${String(v[1]).padStart(2, '0')}`;
  return v.length > 0 ? `${name} ${v.join('.')}` : name;
}
