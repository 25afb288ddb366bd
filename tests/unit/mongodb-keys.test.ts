import { EJSON, Long, ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import { keyText, keyValue } from '../../src/backends/mongodb/keys.js';

// keyText has fast paths for strings and 32-bit integers; the text must be
// exactly relaxed EJSON's, since queue entries, failures and status carry it.
describe('MongoDB _id as text', () => {
  const ids: unknown[] = ['abc', '', '"quoted" \\ back', 'ünï', '42', 0, 7, -7, 2147483647, -2147483648, 2147483648, -2147483649, 1.5, -0, new ObjectId('64b7f0000000000000000001'), { a: 1, b: 'x' }, new Long(5), null];

  for (const id of ids) {
    it(`${EJSON.stringify(id, { relaxed: true })} reads as relaxed EJSON and goes back unchanged`, () => {
      const text = keyText(id);
      expect(text).toBe(EJSON.stringify(id, { relaxed: true }));
      expect(EJSON.stringify(keyValue(text), { relaxed: false })).toBe(EJSON.stringify(EJSON.parse(text, { relaxed: true }), { relaxed: false }));
    });
  }

  it('tells a string of digits from a number', () => {
    expect(keyValue(keyText('42'))).toBe('42');
    expect(keyValue(keyText(42))).toBe(42);
  });
});
