/** One row of the handbook's transaction files (TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, …, TX_FRAUD). */
export interface HandbookRow {
  readonly id: string;
  /** TX_DATETIME as written, e.g. `2018-04-01 00:00:31`. */
  readonly datetime: string;
  /** TX_DATETIME read as UTC, epoch ms. */
  readonly t: number;
  readonly customer_id: string;
  readonly terminal_id: string;
  readonly amount: number;
  readonly fraud: boolean;
  /**
   * When the fraud label became known (LABELED_AT, epoch ms), if the file says so: the backfill then applies the
   * label at that point of the replay, as the worker would have when the label arrived, instead of with the
   * transaction.
   */
  readonly labeledAt?: number;
  /** DEVICE_ID and IP, in files that have them (generated with devices, issue 20); absent when empty. */
  readonly device_id?: string;
  readonly ip?: string;
}
