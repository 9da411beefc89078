export { createGateway, createAdminApp, type Gateway, type GatewayDeps } from './app';
export { loadConfig, ConfigError, type GatewayConfig } from './config';
export { ConnectionIds } from './connection-id';
export { ClientAddressResolver } from './client-address';
