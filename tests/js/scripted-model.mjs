// A deterministic `Model` for the JS SDK: each call to the model takes the next scripted reply.
//
// Replies are arrays of output items in the JS protocol shape (see `functionCall` and
// `assistantMessage`). A call beyond the script throws, so a model call that should not
// happen (a repeated turn after a resume) fails the step loudly instead of inventing output.
import { Usage } from '@openai/agents';

/** One function-tool call, as the model would return it. */
export function functionCall(name, args, callId) {
  return {
    type: 'function_call',
    id: callId,
    callId,
    name,
    arguments: JSON.stringify(args),
    status: 'completed',
  };
}

/** One assistant text message, as the model would return it. */
export function assistantMessage(text) {
  return {
    type: 'message',
    id: 'scripted-message',
    role: 'assistant',
    status: 'completed',
    content: [{ type: 'output_text', text }],
  };
}

/** A `Model` that replays `replies` in order and records what it was sent. */
export class ScriptedModel {
  constructor(replies, { name = 'scripted' } = {}) {
    this.replies = [...replies];
    this.name = name;
    this.calls = [];
  }

  async getResponse(request) {
    this.calls.push(request);
    if (this.replies.length === 0) {
      throw new Error(
        `${this.name}: unexpected model call #${this.calls.length} (the script is exhausted)`,
      );
    }
    const output = this.replies.shift();
    return {
      usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }),
      output,
      responseId: `resp-${this.name}-${this.calls.length}`,
    };
  }

  async *getStreamedResponse(request) {
    const response = await this.getResponse(request);
    yield { type: 'response_started' };
    yield {
      type: 'response_done',
      response: {
        id: response.responseId,
        usage: {
          requests: 1,
          inputTokens: response.usage.inputTokens,
          outputTokens: response.usage.outputTokens,
          totalTokens: response.usage.totalTokens,
        },
        output: response.output,
      },
    };
  }
}
