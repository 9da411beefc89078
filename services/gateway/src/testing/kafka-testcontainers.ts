/*
 * A Kafka test broker in Docker, through testcontainers' Kafka module (a devDependency, loaded
 * only when this provider is chosen: selectKafkaProvider in kafka.ts). One KRaft node of
 * Confluent's cp-kafka image (KAFKA_TEST_IMAGE, default confluentinc/cp-kafka:8.0.0, which is
 * Apache Kafka 4.0), its client port mapped to a free host port. No outage controls: the tests
 * that kill or pause a broker run on the local provider (what CI runs).
 */
import { dockerEngineReachable } from '@peertracker/redis-store/dist/testing';
import type { KafkaTestBroker } from './kafka';

const STARTUP_TIMEOUT_MS = 180_000; // includes pulling the image the first time
/** the port KafkaContainer opens for clients outside Docker */
const HOST_CLIENT_PORT = 9093;

export function kafkaTestImage(env: NodeJS.ProcessEnv = process.env): string {
  return env.KAFKA_TEST_IMAGE?.trim() || 'confluentinc/cp-kafka:8.0.0';
}

export async function startKafkaContainer(env: NodeJS.ProcessEnv = process.env): Promise<KafkaTestBroker> {
  const probe = await dockerEngineReachable(env);
  if (!probe.reachable) {
    throw new Error(
      `Kafka test provider "testcontainers" chosen, but no Docker engine answered at ${probe.endpoint} (${probe.reason}).` +
        ' Start Docker, set DOCKER_HOST, or unset KAFKA_TEST_PROVIDER to run a local broker (Java 17 and Maven), or point KAFKA_BROKERS at a running cluster',
    );
  }
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const c = await new KafkaContainer(kafkaTestImage(env))
    .withKraft()
    .withEnvironment({ KAFKA_NUM_PARTITIONS: '4', KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0' })
    .withStartupTimeout(STARTUP_TIMEOUT_MS)
    .start();
  return {
    brokers: [`${c.getHost()}:${c.getMappedPort(HOST_CLIENT_PORT)}`],
    stop: async () => {
      await c.stop();
    },
  };
}
