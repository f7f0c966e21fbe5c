import { describe, expect, it } from 'vitest';
import { CloserStack } from '../../../src/app/closer-stack.js';

describe('CloserStack', () => {
  it('closes newest first, passes the grace, and goes on past a failing closer', async () => {
    const stack = new CloserStack();
    const closed: string[] = [];
    stack.push('a', 1, (graceMs) => void closed.push(`a:${graceMs}`));
    stack.push('b', 2, () => {
      throw new Error('b broke');
    });
    stack.push('c', 3, async () => void closed.push('c'));
    const errors: string[] = [];
    await stack.close(50, (name, error) => errors.push(`${name}: ${(error as Error).message}`));
    expect(closed).toEqual(['c', 'a:50']);
    expect(errors).toEqual(['b: b broke']);
  });

  it('closes once however often it is asked', async () => {
    const stack = new CloserStack();
    let count = 0;
    stack.push('x', null, () => void count++);
    await Promise.all([stack.close(0, () => {}), stack.close(0, () => {})]);
    await stack.close(0, () => {});
    expect(count).toBe(1);
  });
});
