// The TypeScript side of Timestep's storage contract, as docs/cross-language.md documents it:
// read and write rows of `timestep_run_states` with `pg`, next to Python's RunStateStore.
//
// A row written by Python (`sdk = 'python'`) carries the JS form of its state in
// `portable_state`; a row written here keeps the JS state in `state` (`sdk = 'js'`) and clears
// the portable columns, and Timestep translates it when Python loads it. `version` is the
// optimistic lock both languages honour: an update only applies to the version it read.
// With TIMESTEP_STATE_KEY set, rows are signed and verified as in Python (signature.mjs).
import { randomUUID } from 'node:crypto';
import { RunState } from '@openai/agents';
import { signRow, verifyRow } from './signature.mjs';

const TABLE = 'timestep_run_states';

/** Load the stored run of `agentName`/`sessionId` as a JS RunState (rebuilt against `agent`). */
export async function loadRunState(client, agent, agentName, sessionId) {
  const { rows } = await client.query(
    `SELECT sdk, schema_version, state, portable_state, portable_error, signature, version
       FROM ${TABLE}
      WHERE agent_name = $1 AND session_id = $2`,
    [agentName, sessionId],
  );
  if (rows.length === 0) {
    throw new Error(`No saved run for agent ${agentName}, session ${sessionId}`);
  }
  const row = rows[0];
  verifyRow({
    agentName,
    sessionId,
    sdk: row.sdk,
    schemaVersion: row.schema_version,
    state: row.state,
    portableState: row.portable_state,
    signature: row.signature,
  });
  const text = row.sdk === 'js' ? row.state : row.portable_state;
  if (text === null) {
    throw new Error(`Run ${sessionId} has no JS form: ${row.portable_error}`);
  }
  return { state: await RunState.fromString(agent, text), version: row.version };
}

/** Save `state` (a RunState) as this run's row; `version` is the one loaded (null: new row). */
export async function saveRunState(client, agentName, sessionId, state, version, finished) {
  const text = state.toString();
  const parsed = JSON.parse(text);
  const interruptions = state.getInterruptions().map((item) => ({
    tool_name: item.name,
    call_id: item.rawItem.callId ?? item.rawItem.id,
    arguments: item.rawItem.arguments,
    agent: item.agent.name,
  }));
  const status = interruptions.length > 0 ? 'interrupted' : finished ? 'completed' : 'running';
  const values = [
    status,
    parsed.$schemaVersion,
    text,
    parsed.currentAgent.name,
    JSON.stringify(interruptions),
    agentName,
    sessionId,
    signRow({
      agentName,
      sessionId,
      sdk: 'js',
      schemaVersion: parsed.$schemaVersion,
      state: text,
      portableState: null,
    }),
  ];
  const { rows } =
    version === null
      ? await client.query(
          `INSERT INTO ${TABLE} (id, status, sdk, schema_version, state, current_agent,
             interruptions, agent_name, session_id, signature, version, created_at, updated_at)
           VALUES ($9, $1, 'js', $2, $3, $4, $5, $6, $7, $8, 1, now(), now())
           ON CONFLICT (agent_name, session_id) DO NOTHING RETURNING version`,
          [...values, randomUUID().replaceAll('-', '')],
        )
      : await client.query(
          `UPDATE ${TABLE} SET status = $1, sdk = 'js', schema_version = $2, state = $3,
             current_agent = $4, interruptions = $5, portable_state = NULL,
             portable_sdk = NULL, portable_schema_version = NULL, portable_error = NULL,
             signature = $8, version = version + 1, updated_at = now()
           WHERE agent_name = $6 AND session_id = $7 AND version = $9 RETURNING version`,
          [...values, version],
        );
  if (rows.length === 0) {
    throw new Error(`Another writer saved run ${sessionId} first; load it again`);
  }
  return { status, version: rows[0].version };
}
