// Pure BitTorrent tracker codecs: bytes in, values or ClientError out. No I/O, clocks or state.
export * from './errors';
export * from './types';
export * from './bencode';
export * from './compact';
export * from './http-request';
export * from './http-response';
export * from './udp';
