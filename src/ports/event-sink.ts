/** Where replayed events go; Kafka in production, an array in tests. */
export interface EventSink {
  send(topic: 'transactions' | 'labels', messages: readonly { key: string; value: string }[]): Promise<void>;
}
