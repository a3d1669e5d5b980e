// Print the JS SDK's own tool-invocation fingerprints for argument strings (JSON list on argv),
// so tests can check Timestep computes the same ones. The function is internal to
// @openai/agents-core, hence the import by file path.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const core = path.dirname(require.resolve('@openai/agents-core'));
const { getToolInvocationFingerprint } = await import(
  pathToFileURL(path.join(core, 'toolInvocation.mjs')).href
);
const [toolName, argumentsList] = JSON.parse(process.argv[2]);
const fingerprints = argumentsList.map((args) =>
  getToolInvocationFingerprint(toolName, {
    type: 'function_call',
    callId: 'call',
    name: 'tool',
    arguments: args,
  }),
);
console.log(JSON.stringify({ fingerprints }));
