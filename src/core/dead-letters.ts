/**
 * The core's view of the Matrix ingress's dead letters (events whose transient failures outlasted
 * the retry bound; src/matrix/ingress/), for the admin command. A port, so that the core does not
 * import the Matrix side.
 */
interface DeadLetter {
  /** The record's number, as `dead-letters retry <id>` takes it. */
  id: number;
  room: string;
  eventId: string;
  attempts: number;
  /** The last failure's code (never content). */
  error: string;
  receivedAt: number;
}

export interface DeadLetterQueue {
  list(limit: number): Promise<DeadLetter[]>;
  /** Puts one dead letter (by id) or all back in their rooms' queues; resolves the rooms woken. */
  retry(id?: number): Promise<number>;
}
