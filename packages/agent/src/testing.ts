// Test helpers other packages' tests use (real servers started in temp dirs). Not for production.
export * from './postgres/testing/pg-cluster.js';
export * from './ssh/testing/sshd.js';
