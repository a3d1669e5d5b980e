// The personal-assistant scenario of tests/interop_assistant.py, built with the JS SDK: an
// assistant with an input and an output guardrail hands off to a weather agent whose
// `get_weather` tool needs approval for Berkeley. Each agent's model replays the replies a
// test step scripts for it, so both languages answer the same way.
import { Agent, handoff, tool } from '@openai/agents';
import { z } from 'zod';
import { ScriptedModel, assistantMessage, functionCall } from './scripted-model.mjs';

/** Model output items for one scripted reply: `{call, args, id}` or `{say}` entries. */
function reply(entries) {
  return entries.map((entry) =>
    'say' in entry ? assistantMessage(entry.say) : functionCall(entry.call, entry.args, entry.id),
  );
}

/** The agent graph; `replies` maps agent names to their replies, `ran` records tool runs. */
export function personalAssistant(replies, ran) {
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather for a city.',
    parameters: z.object({ city: z.string() }),
    needsApproval: async (_context, input) => input.city === 'Berkeley',
    execute: async ({ city }) => {
      ran.push(city);
      return `Sunny, 21C in ${city}`;
    },
  });
  const polite = {
    name: 'polite',
    execute: async ({ input }) => ({
      tripwireTriggered: JSON.stringify(input).includes('stupid'),
      outputInfo: { checked: 'input' },
    }),
  };
  const noSecrets = {
    name: 'no_secrets',
    execute: async ({ agentOutput }) => ({
      tripwireTriggered: String(agentOutput).includes('password'),
      outputInfo: { checked: 'output' },
    }),
  };
  const model = (name) => new ScriptedModel((replies[name] ?? []).map(reply), { name });
  const weather = new Agent({
    name: 'Weather',
    instructions: 'Answer weather questions with get_weather.',
    model: model('Weather'),
    tools: [getWeather],
    outputGuardrails: [noSecrets],
  });
  const assistant = new Agent({
    name: 'Assistant',
    instructions: 'Help the user; hand weather questions to the weather agent.',
    model: model('Assistant'),
    // Python names this handoff transfer_to_weather; JS would say transfer_to_Weather.
    handoffs: [handoff(weather, { toolNameOverride: 'transfer_to_weather' })],
    inputGuardrails: [polite],
    outputGuardrails: [noSecrets],
  });
  return { assistant, weather };
}
