"""Durable agent workflows on DBOS: crash recovery, queues, schedules, durable approvals.

An agent run inside a workflow survives ``kill -9`` at any moment: after a restart it replays
its checkpointed model calls, tool calls and guardrail verdicts and carries on from where it
stopped. DBOS keeps its tables in Timestep's own database (PostgreSQL, or the embedded SQLite
file).

Example::

    from timestep.workflows import (configure_dbos, ensure_dbos_launched, register_agent,
                                    run_agent_workflow, approve_workflow)

    register_agent(assistant)          # every worker, before launching
    configure_dbos()                   # same database as RunStateStore
    ensure_dbos_launched()             # heartbeats; adopts the runs of dead workers
    result = await run_agent_workflow(agent=assistant, input_items="hi", workflow_id="order-7")
    await approve_workflow("order-7", approve=True)   # when a run waits for a human

Modules: :mod:`.config` (configure/launch/shutdown), :mod:`.registry` (agents by name),
:mod:`.sessions` (sessions by description), :mod:`.durable` (the durable run and its steps),
:mod:`.approvals`, :mod:`.queues`, :mod:`.schedules`, :mod:`.handles`, :mod:`.inspection`
(list, show, cancel, resume), :mod:`.fleet` (worker identity, heartbeats, adopting the runs of
dead workers).
"""

from .approvals import APPROVAL_TOPIC, PendingApproval, approve_workflow, pending_approvals
from .config import (
    DEFAULT_APPLICATION_VERSION,
    WorkflowSettings,
    configure_dbos,
    dbos_settings,
    ensure_dbos_launched,
    shutdown_dbos,
    system_database_url,
)
from .durable import DurableModel, DurableModelProvider, run_agent_workflow
from .fleet import WorkerInfo, default_executor_id, list_workers
from .handles import AgentWorkflowHandle, AgentWorkflowResult, get_agent_workflow
from .inspection import (
    AgentWorkflowDetails,
    AgentWorkflowInfo,
    WorkflowStep,
    cancel_agent_workflow,
    list_agent_workflows,
    resume_agent_workflow,
    show_agent_workflow,
)
from .queues import DEFAULT_QUEUE, queue_agent_workflow, register_agent_queue
from .registry import get_registered_agent, register_agent, registered_agents, unregister_agent
from .schedules import (
    ScheduledAgentWorkflow,
    create_scheduled_agent_workflow,
    delete_scheduled_agent_workflow,
    list_scheduled_agent_workflows,
    trigger_scheduled_agent_workflow,
)
from .sessions import SessionSpec, register_session_factory

__all__ = [
    "APPROVAL_TOPIC",
    "DEFAULT_APPLICATION_VERSION",
    "DEFAULT_QUEUE",
    "AgentWorkflowDetails",
    "AgentWorkflowHandle",
    "AgentWorkflowInfo",
    "AgentWorkflowResult",
    "DurableModel",
    "DurableModelProvider",
    "PendingApproval",
    "ScheduledAgentWorkflow",
    "SessionSpec",
    "WorkerInfo",
    "WorkflowSettings",
    "WorkflowStep",
    "approve_workflow",
    "cancel_agent_workflow",
    "configure_dbos",
    "create_scheduled_agent_workflow",
    "dbos_settings",
    "default_executor_id",
    "delete_scheduled_agent_workflow",
    "ensure_dbos_launched",
    "get_agent_workflow",
    "get_registered_agent",
    "list_agent_workflows",
    "list_scheduled_agent_workflows",
    "list_workers",
    "pending_approvals",
    "queue_agent_workflow",
    "register_agent",
    "register_agent_queue",
    "register_session_factory",
    "registered_agents",
    "resume_agent_workflow",
    "run_agent_workflow",
    "show_agent_workflow",
    "shutdown_dbos",
    "system_database_url",
    "trigger_scheduled_agent_workflow",
    "unregister_agent",
]
