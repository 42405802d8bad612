/** The task id of DriveQuant's documented example answer. */
export const DOCUMENTED_TASK_ID = '6753030831fe9826412bac5c';

/** DriveQuant's documented example answer to GET /v1/enterprise/task/{taskId}. */
export const DOCUMENTED_TASK = Object.freeze({
  taskId: DOCUMENTED_TASK_ID,
  createdAt: '2024-12-09T14:14:17.574+0000',
  type: 'PUSH_FAILED_TRIPS',
  status: 'IN_PROGRESS',
  nbItems: 321,
  nbRemainingItems: 12,
});

/** The documented example's `createdAt`, in Unix milliseconds. */
export const DOCUMENTED_CREATED_AT_MS = Date.UTC(2024, 11, 9, 14, 14, 17, 574);
