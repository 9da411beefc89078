export * from './client';
export * from './record';
