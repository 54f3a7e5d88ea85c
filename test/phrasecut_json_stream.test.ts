import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { FileFormatError, FileNotFoundError } from '../src/errors.js';
import { readJsonRange, streamJsonArray, type JsonArrayElement } from '../src/train/json_stream.js';

async function withFile<T>(text: string | Uint8Array, run: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'json-stream-'));
  const file = path.join(dir, 'a.json');
  await fs.writeFile(file, text);
  try {
    return await run(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function collect(file: string, chunkSize?: number): Promise<JsonArrayElement[]> {
  const out: JsonArrayElement[] = [];
  for await (const e of streamJsonArray(file, chunkSize === undefined ? {} : { chunkSize })) out.push(e);
  return out;
}

test('elements of any JSON kind come out in order with exact byte ranges, for every chunk size (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.jsonValue(), { maxLength: 8 }), fc.integer({ min: 1, max: 64 }), async (values, chunk) => {
      const text = `\n [ ${values.map((v) => JSON.stringify(v, null, values.length % 2 === 0 ? 1 : undefined)).join(' ,\n')} ] \n`;
      await withFile(text, async (file) => {
        const got = await collect(file, chunk);
        assert.deepEqual(got.map((e) => e.value), JSON.parse(text));
        const bytes = Buffer.from(text, 'utf8');
        const handle = await fs.open(file, 'r');
        try {
          for (const e of got) {
            assert.deepEqual(JSON.parse(bytes.subarray(e.offset, e.offset + e.length).toString('utf8')), e.value);
            assert.deepEqual((await readJsonRange(handle, e.offset, e.length)).value, e.value);
          }
        } finally {
          await handle.close();
        }
      });
    }),
    { numRuns: 150 },
  );
});

test('multi-byte UTF-8 split across chunks, escapes and brackets inside strings', async () => {
  const records = [{ phrase: 'café ☕ table', s: 'a "quoted" ] } [ { \\ path' }, '\u00e9\u{1F600}', [[1.5, -2e-3]]];
  await withFile(JSON.stringify(records), async (file) => {
    for (const chunk of [1, 2, 3, 5, 1 << 20]) assert.deepEqual((await collect(file, chunk)).map((e) => e.value), records);
  });
});

test('an unparsable element is reported and the stream goes on', async () => {
  await withFile('[{"a": 1}, {"b": [1, 2,]}, {"c": 3}, nul, 4]', async (file) => {
    const got = await collect(file, 4);
    assert.deepEqual(got.map((e) => e.value), [{ a: 1 }, undefined, { c: 3 }, undefined, 4]);
    assert.ok(got[1]?.error !== undefined && got[3]?.error !== undefined);
    assert.equal(got[1]?.index, 1);
  });
});

test('empty arrays and a leading BOM are accepted', async () => {
  await withFile(' [ ] ', async (file) => assert.deepEqual(await collect(file), []));
  await withFile(new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from('[1]')]), async (file) => assert.deepEqual((await collect(file)).map((e) => e.value), [1]));
});

test('structural defects raise FileFormatError naming the file and the byte', async () => {
  const cases: Array<[string, RegExp]> = [
    ['', /file is empty/],
    ['{"a": 1}', /byte 0: expected '\['/],
    ['[1, 2', /ends before the closing/],
    ['[{"a": [1, 2}', /ends before the closing/],
    ['[1,]', /byte 3: expected a value/],
    ['[,1]', /byte 1: expected a value/],
    ['[1 2]', /expected ',' or '\]' after element 0/],
    ['[1] x', /unexpected 'x' after the closing/],
  ];
  for (const [text, pattern] of cases) {
    await withFile(text, async (file) => {
      await assert.rejects(collect(file, 3), (e: unknown) => e instanceof FileFormatError && e.message.includes(file) && pattern.test(e.message), text);
    });
  }
  await assert.rejects(collect('/nonexistent/refer_train.json'), FileNotFoundError);
});
