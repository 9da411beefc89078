export * from './client';
export * from './record';
export * from './connection';
