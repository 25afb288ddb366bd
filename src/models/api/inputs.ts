import { SuperduperError } from '../../errors.js';

/**
 * Embedding APIs take text. A row that is not (a number column, several key
 * columns) fails alone, with code api_input so that it does not fail its chunk's
 * other rows (see calls.ts).
 */
export function texts(label: string, inputs: readonly unknown[]): string[] {
  return inputs.map((input) => {
    if (typeof input === 'string') return input;
    const what = input === null ? 'NULL' : typeof input === 'object' ? 'an object (several key columns?)' : `a ${typeof input}`;
    throw new SuperduperError(`${label} embeds text; the row gives ${what}`, {
      code: 'api_input',
      hint: 'Key the listener by one text column, or cast it in a generated column.',
    });
  });
}
