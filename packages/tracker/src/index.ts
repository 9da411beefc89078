export * from './store';
export { MemoryStore, MAX_PEER_LIFETIME_MS, DEFAULT_MEMORY_MAX_PEERS, DEFAULT_MEMORY_MAX_SWARMS } from './memory-store';
export type { MemoryStoreOptions, PoolInfo } from './memory-store';
export { TrackerLogic } from './logic';
export type { TrackerOptions, PeerEndpoint, AnnounceReply } from './logic';
