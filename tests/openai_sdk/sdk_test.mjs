// The official OpenAI Node SDK against `iol serve` (run by tests/integration/server_sdk_test.cpp,
// which checks the printed results against `iol generate`). Usage: node sdk_test.mjs BASE_URL API_KEY
import OpenAI from 'openai';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const out = {};
const seeded = { model: 'tiny', max_tokens: 10, temperature: 0.8, seed: 5, ignore_eos: true, return_token_ids: true };

out.completion = await client.completions.create({ ...seeded, prompt: 'Hello' });

let ids = [], text = '', usage = null, chunks = 0, finish = null;
for await (const chunk of await client.completions.create({ ...seeded, prompt: 'Hello', stream: true,
                                                           stream_options: { include_usage: true } })) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) { ids.push(...c.token_ids); text += c.text; if (c.finish_reason) finish = c.finish_reason; }
}
out.completion_stream = { ids, text, usage, chunks, finish };

out.completion_n = await client.completions.create({ ...seeded, prompt: [256, 72, 105], n: 3, logprobs: 2 });

const messages = [{ role: 'user', content: 'What is the weather?' }];
const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
out.chat = await client.chat.completions.create({ ...seeded, messages, tools, logprobs: true, top_logprobs: 2 });

ids = []; text = ''; usage = null; let role = null; finish = null;
for await (const chunk of await client.chat.completions.create({ ...seeded, messages, tools, stream: true,
                                                                 stream_options: { include_usage: true } })) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    ids.push(...(c.token_ids ?? []));
    if (c.finish_reason) finish = c.finish_reason;
  }
}
out.chat_stream = { ids, text, usage, role, finish };

out.stop = await client.completions.create({ model: 'tiny', prompt: 'Hi', max_tokens: 24, temperature: 0, ignore_eos: true,
                                             stop: [process.argv[4] ?? 'x'] });

out.errors = {};
for (const [name, call] of Object.entries({
  bad_temperature: () => client.completions.create({ model: 'tiny', prompt: 'a', temperature: 9 }),
  unknown_model: () => client.completions.create({ model: 'gpt-4', prompt: 'a' }),
  wrong_key: () => new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).completions.create({ model: 'tiny', prompt: 'a' }),
})) {
  try { await call(); out.errors[name] = { status: 0 }; }
  catch (e) { out.errors[name] = { status: e.status, type: e.type ?? e.error?.type, param: e.param ?? e.error?.param, class: e.constructor.name }; }
}
out.models = (await client.models.list()).data.map((m) => m.id);
console.log(JSON.stringify(out));
