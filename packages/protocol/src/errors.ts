/**
 * An error whose message is safe to show a BitTorrent client (as an HTTP `failure reason` or a
 * BEP 15 error message). Anything else thrown by protocol code is a bug.
 */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(message: string) {
    super(message);
  }
}
