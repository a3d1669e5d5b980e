// The SDKs' historical RunState fixtures through the JS SDK, for tests/test_sdk_fixtures.py:
//
//   node fixtures.mjs reserialize --file CASES.json --out RESULTS.json
//   node fixtures.mjs probe --file CASES.json --out RESULTS.json
//
// CASES is a JSON list of {graph, state[, calls]}. `graph` names the agent graph the state
// needs: {start, agents: {name: [function tool names]}, agentTools: {tool: agent}}; every
// function tool needs approval. `reserialize` loads each state (RunState.fromString) and
// writes it again (toString); `probe` resumes it with a model that makes `calls` ([{tool, id,
// args}]) and then answers, and reports which calls ran, were refused or wait for approval.
// One result per case, {state} / {pending, ran, outputs} or {error, message}, in CASES order.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, RunState, Runner, tool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from './scripted-model.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { file: { type: 'string' }, out: { type: 'string' } },
});

/** The agents of `graph`, each with its own model; returns the starting agent. */
function buildGraph(graph, replies, ran) {
  const agents = new Map();
  for (const name of Object.keys(graph.agents)) {
    agents.set(
      name,
      new Agent({ name, model: new ScriptedModel(name === graph.start ? replies : [], { name }) }),
    );
  }
  for (const [name, toolNames] of Object.entries(graph.agents)) {
    agents.get(name).tools = toolNames.map((toolName) =>
      tool({
        name: toolName,
        description: toolName,
        parameters: { type: 'object', properties: {}, required: [], additionalProperties: true },
        strict: false,
        needsApproval: true,
        execute: async () => {
          ran.push(toolName);
          return `${toolName} ran`;
        },
      }),
    );
  }
  for (const [toolName, owner] of Object.entries(graph.agentTools ?? {})) {
    const nested = agents.get(graph.start);
    nested.tools.push(agents.get(owner).asTool({ toolName, toolDescription: toolName }));
  }
  return agents.get(graph.start);
}

async function reserialize({ graph, state }) {
  const restored = await RunState.fromString(buildGraph(graph, [], []), JSON.stringify(state));
  return { state: JSON.parse(restored.toString()) };
}

async function probe({ graph, state, calls }) {
  const ran = [];
  const replies = [
    ...(calls.length ? [calls.map((call) => functionCall(call.tool, call.args ?? {}, call.id))] : []),
    [assistantMessage('done')],
  ];
  const start = buildGraph(graph, replies, ran);
  const restored = await RunState.fromString(start, JSON.stringify(state));
  const result = await new Runner({ tracingDisabled: true }).run(start, restored);
  const outputs = {};
  for (const item of result.newItems) {
    if (item.type === 'tool_call_output_item') {
      outputs[item.rawItem.callId] =
        typeof item.output === 'string' ? item.output : JSON.stringify(item.output);
    }
  }
  return {
    pending: result.interruptions.map((item) => item.rawItem.callId),
    ran,
    outputs,
  };
}

const phases = { reserialize, probe };
if (!(positionals[0] in phases)) {
  throw new Error(`unknown phase ${positionals[0]}; use reserialize or probe`);
}
const results = [];
for (const entry of JSON.parse(fs.readFileSync(values.file, 'utf8'))) {
  try {
    results.push(await phases[positionals[0]](entry));
  } catch (error) {
    results.push({ error: error.constructor.name, message: error.message });
  }
}
fs.writeFileSync(values.out, JSON.stringify(results));
console.log(JSON.stringify({ cases: results.length }));
