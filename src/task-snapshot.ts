/** The five statuses DriveQuant documents for a task, in lifecycle order. */
export const KNOWN_STATUSES = [
  'PENDING',
  'IN_PROGRESS',
  'COMPLETED',
  'CANCELED',
  'FAILED',
] as const;

/** The two task types DriveQuant documents. */
export const KNOWN_TASK_TYPES = ['PUSH_FAILED_TRIPS', 'PUSH_FAILED_CRASHES'] as const;

/** Statuses after which DriveQuant never changes a task again. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'CANCELED', 'FAILED']);

/** One validated answer of `GET /v1/enterprise/task/{taskId}`. */
export interface TaskSnapshot {
  /** The task id, as DriveQuant returned it. */
  taskId: string;
  /** `type`, sanitised to `[A-Z0-9_]` so that it is safe as a label value. */
  taskType: string;
  /** `status`, sanitised to `[A-Z0-9_]`; may be one the exporter does not know. */
  status: string;
  /** `nbItems`: total number of items. */
  items: number;
  /** `nbRemainingItems`: items not yet processed. */
  remainingItems: number;
  /** `createdAt`, in Unix seconds with milliseconds. */
  createdSeconds: number;
  /** `completedAt`, in Unix seconds with milliseconds, when DriveQuant sent one. */
  completedSeconds?: number;
}

/** Whether a status is terminal: the task will not change any more. */
export function isTerminalStatus(status: string): boolean {
  return TERMINAL_STATUSES.has(status);
}
