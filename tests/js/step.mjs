// One JS step of a cross-language test, run as its own process against the shared database:
//
//   node step.mjs pause  --url URL --session S --replies JSON [--input TEXT]
//   node step.mjs resume --url URL --session S --replies JSON --decision approve|reject|none
//   node step.mjs decide --url URL --session S --decision approve|reject   (save, no resume)
//   node step.mjs resume --file STATE.json --out RESULT.json --replies JSON --decision ...
//   node step.mjs reserialize --file STATES.json --out STATES.json
//
// Prints one JSON line: what the step saw and did (pending approvals, tool runs, final output,
// the tool outputs the model was sent, the stored status and version).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { RunState, Runner } from '@openai/agents';
import { personalAssistant } from './personal-assistant.mjs';
import { loadRunState, saveRunState } from './run-state-store.mjs';

const AGENT = 'Assistant';
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    session: { type: 'string' },
    replies: { type: 'string', default: '{}' },
    decision: { type: 'string', default: 'approve' },
    input: { type: 'string', default: "What's the weather in Berkeley?" },
    file: { type: 'string' },
    out: { type: 'string' },
  },
});
const phase = positionals[0];
const ran = [];
const { assistant, weather } = personalAssistant(JSON.parse(values.replies), ran);
const runner = new Runner({ tracingDisabled: true });

/** The get_weather results in the weather model's last input, as the model was sent them. */
function toolOutputsSeen() {
  const input = weather.model.calls.at(-1)?.input;
  if (!Array.isArray(input)) {
    return [];
  }
  const calls = new Set(
    input.filter((item) => item.name === 'get_weather').map((item) => item.callId),
  );
  return input
    .filter((item) => item.type === 'function_call_result' && calls.has(item.callId))
    .map((item) => (typeof item.output === 'string' ? item.output : item.output.text));
}

function approveOrReject(state) {
  const pending = state.getInterruptions();
  // `none`: the decisions were made (and saved) before this step.
  for (const item of values.decision === 'none' ? [] : pending) {
    if (values.decision === 'reject') {
      state.reject(item, { message: 'Not allowed by the operator.' });
    } else {
      state.approve(item);
    }
  }
  return pending.map((item) => ({ tool: item.name, arguments: item.rawItem.arguments }));
}

function report(result, extra) {
  return {
    interruptions: result.interruptions.map((item) => ({
      tool: item.name,
      arguments: item.rawItem.arguments,
    })),
    // A paused result has no final output (and the SDK warns when asked for one).
    final_output: result.interruptions.length > 0 ? null : (result.finalOutput ?? null),
    tool_calls: ran,
    tool_outputs_seen_by_model: toolOutputsSeen(),
    ...extra,
  };
}

async function withDatabase(work) {
  const client = new pg.Client({ connectionString: values.url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function main() {
  if (phase === 'pause') {
    return withDatabase(async (client) => {
      const result = await runner.run(assistant, values.input);
      const saved = await saveRunState(client, AGENT, values.session, result.state, null, false);
      return report(result, saved);
    });
  }
  if (phase === 'reserialize') {
    // Each state (a JSON list in --file) through the JS SDK: fromString, then toString.
    const states = JSON.parse(fs.readFileSync(values.file, 'utf8'));
    const rewritten = [];
    for (const state of states) {
      const restored = await RunState.fromString(assistant, JSON.stringify(state));
      rewritten.push(JSON.parse(restored.toString()));
    }
    fs.writeFileSync(values.out, JSON.stringify(rewritten));
    return { states: rewritten.length };
  }
  if (phase === 'resume' && values.file) {
    const state = await RunState.fromString(assistant, fs.readFileSync(values.file, 'utf8'));
    const pending = approveOrReject(state);
    const result = await runner.run(assistant, state);
    fs.writeFileSync(values.out, result.state.toString());
    return report(result, { pending });
  }
  if (phase === 'decide') {
    return withDatabase(async (client) => {
      const { state, version } = await loadRunState(client, assistant, AGENT, values.session);
      const pending = approveOrReject(state);
      return { pending, ...(await saveRunState(client, AGENT, values.session, state, version, false)) };
    });
  }
  if (phase === 'resume') {
    return withDatabase(async (client) => {
      const { state, version } = await loadRunState(client, assistant, AGENT, values.session);
      const pending = approveOrReject(state);
      const result = await runner.run(assistant, state);
      const finished = result.interruptions.length === 0 && result.finalOutput !== undefined;
      const saved = await saveRunState(
        client,
        AGENT,
        values.session,
        result.state,
        version,
        finished,
      );
      return report(result, { pending, ...saved });
    });
  }
  throw new Error(`unknown phase ${phase}; use pause, decide, resume or reserialize`);
}

try {
  console.log(JSON.stringify(await main()));
} catch (error) {
  console.log(JSON.stringify({ error: error.constructor.name, message: error.message }));
  process.exitCode = 3;
}
