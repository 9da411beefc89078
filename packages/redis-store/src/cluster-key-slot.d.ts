// Types for the `cluster-key-slot` package (Redis Cluster's CRC16 key slot, used by ioredis), which ships none.
declare module 'cluster-key-slot' {
  /** the cluster slot (0–16383) of a key, from its hash tag when it has one */
  export default function calculateSlot(key: string | Buffer): number;
}
