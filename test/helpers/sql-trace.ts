import type { SqlRunner, SqlValue, Tx } from "../../src/db/sql.js";

/**
 * Sees each statement before it runs: to count or list them, or to fail one (return the error it
 * should fail with, as a cut connection would).
 */
export type StatementWatcher = (text: string) => Error | undefined | void;

/** `tx` with every `run`/`all` statement shown to `watch` first. */
export function watchedTx(tx: Tx, watch: StatementWatcher): Tx {
  return Object.assign((table: string) => tx(table), tx, {
    run: (text: string, params?: readonly SqlValue[]) => {
      const err = watch(text);
      return err instanceof Error ? Promise.reject(err) : tx.run(text, params);
    },
    all: <R>(text: string, params?: readonly SqlValue[]) => {
      const err = watch(text);
      return err instanceof Error ? Promise.reject(err) : tx.all<R>(text, params);
    },
  }) as Tx;
}

/**
 * Routes the work `runner.connection` (or `.transaction`) runs through `watchedTx` until the
 * returned function is called. The runner is the one shared by every user of its knex, so the
 * product code under test is watched too.
 */
export function watchRunner(
  runner: SqlRunner,
  method: "connection" | "transaction",
  watch: StatementWatcher,
): () => void {
  const original = runner[method].bind(runner);
  runner[method] = <T>(fn: (tx: Tx) => Promise<T>): Promise<T> =>
    original((tx) => fn(watchedTx(tx, watch)));
  return () => {
    runner[method] = original;
  };
}
