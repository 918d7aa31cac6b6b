import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

/** A worker that polled a task queue, as Temporal reports it: the agent's identity and its last poll. */
export interface AgentPoller {
  identity: string;
  /** An agent long-polls: a live one has polled within about a minute; a dead one stays listed a few minutes. */
  last_poll_at: string | null;
}

/** Who polls the provider agents' task queues (Temporal's DescribeTaskQueue), for the operator's capacity view. */
export class AgentPollers {
  constructor(
    private readonly client: Client,
    private readonly namespace: string,
  ) {}

  async of(taskQueue: string): Promise<AgentPoller[]> {
    const answer = await this.client.withDeadline(Date.now() + 2_000, () =>
      this.client.workflowService.describeTaskQueue({
        namespace: this.namespace,
        taskQueue: {
          name: taskQueue,
          kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL,
        },
        taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      }),
    );
    return (answer.pollers ?? []).map((poller) => ({
      identity: poller.identity ?? '',
      last_poll_at: poller.lastAccessTime?.seconds
        ? new Date(Number(poller.lastAccessTime.seconds) * 1000).toISOString()
        : null,
    }));
  }
}
