import type { ServerResponse } from 'node:http';

/**
 * Streamed answers ("stream": true) as the real APIs send them, as server-sent
 * events, for the local API server (api-servers.ts): several deltas per answer,
 * with optional pauses, cuts and mid-stream errors to test clients against.
 */
export interface StreamSettings {
  /** Pause before each delta (ms). */
  delayMs: number;
  /** Stop after this many deltas: 'destroy' breaks the connection, 'end' closes it cleanly without the API's last event. */
  cut?: { after: number; how: 'destroy' | 'end' };
  /** After this many deltas, the API's error event (an overloaded server) instead of the rest. */
  errorAfter?: number;
  /** Streamed answers whose client went away before their end (an abort). */
  abandoned: number;
  /** Streamed answers sent to their end. */
  completed: number;
}

export function streamSettings(): StreamSettings {
  return { delayMs: 0, abandoned: 0, completed: 0 };
}

/** The answer in pieces as an LLM emits them: each word with the spaces after it. */
export function deltas(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

type Event = { event?: string; data: unknown };

/** OpenAI chat completions: a role chunk, one chunk per delta, a finish chunk, then data: [DONE]. */
export function streamOpenAi(response: ServerResponse, settings: StreamSettings, model: string, content: string): Promise<void> {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    data: { id: 'chatcmpl-test', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta, finish_reason: finish }] },
  });
  return send(response, settings, {
    head: [chunk({ role: 'assistant', content: '' })],
    pieces: deltas(content).map((piece) => chunk({ content: piece })),
    tail: [chunk({}, 'stop'), { data: '[DONE]' }],
    error: { data: { error: { message: 'injected: the server is overloaded', type: 'server_error' } } },
  });
}

/**
 * Anthropic messages: message_start, then a text block, a thinking block (whose
 * deltas are not the answer) and a second text block, then message_delta and
 * message_stop; pings between.
 */
export function streamAnthropic(response: ServerResponse, settings: StreamSettings, model: string, text: string): Promise<void> {
  const all = deltas(text);
  const half = Math.ceil(all.length / 2);
  const block = (index: number, type: 'text' | 'thinking', pieces: string[]): Event[] => [
    { event: 'content_block_start', data: { type: 'content_block_start', index, content_block: type === 'text' ? { type, text: '' } : { type, thinking: '' } } },
    ...pieces.map((piece) => ({
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index, delta: type === 'text' ? { type: 'text_delta', text: piece } : { type: 'thinking_delta', thinking: piece } },
    })),
    { event: 'content_block_stop', data: { type: 'content_block_stop', index } },
  ];
  const events = [...block(0, 'text', all.slice(0, half)), ...block(1, 'thinking', ['pondering ', 'this']), ...block(2, 'text', all.slice(half))];
  return send(response, settings, {
    head: [
      { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_test', type: 'message', role: 'assistant', model, content: [], stop_reason: null } } },
      { event: 'ping', data: { type: 'ping' } },
    ],
    // Every event counts as a delta for cuts and errors, so that a cut can fall anywhere.
    pieces: events,
    tail: [
      { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: all.length } } },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ],
    error: { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'injected: Overloaded' } } },
  });
}

async function send(response: ServerResponse, settings: StreamSettings, answer: { head: Event[]; pieces: Event[]; tail: Event[]; error: Event }): Promise<void> {
  let gone = false;
  let cut = false;
  response.on('close', () => {
    if (!response.writableEnded && !cut) {
      gone = true;
      settings.abandoned++;
    }
  });
  const write = (event: Event) => {
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
    response.write(`${event.event ? `event: ${event.event}\n` : ''}data: ${data}\n\n`);
  };
  response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  answer.head.forEach(write);
  for (const [i, piece] of answer.pieces.entries()) {
    if (settings.cut && i === settings.cut.after) {
      cut = true;
      if (settings.cut.how === 'end') return void response.end();
      // Only once what was written has reached the client, as when a proxy or the server dies mid-answer.
      await new Promise((resolve) => setTimeout(resolve, 20));
      response.destroy();
      return;
    }
    if (settings.errorAfter === i) {
      write(answer.error);
      response.end();
      return;
    }
    if (settings.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, settings.delayMs));
    if (gone) return;
    write(piece);
  }
  answer.tail.forEach(write);
  response.end();
  settings.completed++;
}
