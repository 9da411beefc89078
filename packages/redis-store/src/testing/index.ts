export { freePort } from './ports';
export { redisSkipReason, selectRedisProvider, startSecuredCluster, startRedisTestServer } from './redis-server';
export { makeTestCertificates } from './certificates';
export type { TestCertificates } from './certificates';
export type { ClusterSecurity, RedisNodeAddress, RedisProvider, RedisTestServer } from './redis-server';
export { dockerEngineReachable, dockerEngineReachableSync } from './docker';
export { startedTogether } from './together';
