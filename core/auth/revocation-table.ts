/**
 * The layout of the session revocation table, shared by the construct that creates it
 * (lib/auth/auth-service.ts) and the store that reads and writes it
 * (lambda/auth/revocations.ts). Pure data.
 */
export const REVOCATION_TABLE = {
  /** Partition key (string). */
  partitionKey: 'pk',
  /** Sort key (string). */
  sortKey: 'sk',
  /** TTL attribute (number, epoch seconds); DynamoDB deletes expired items lazily. */
  timeToLive: 'expiresAt',
} as const;
