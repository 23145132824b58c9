/**
 * Readiness of one dependency, for /ready and the metrics. A plain function type, kept here so that
 * the Matrix side (which serves /ready) and metrics/ (which builds the checks) share it without
 * importing each other.
 */
export type ReadinessCheck = () => Promise<{ name: string; ok: boolean; detail?: string }>;
