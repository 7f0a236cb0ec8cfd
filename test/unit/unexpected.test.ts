// src/util/unexpected.ts: what the CLI prints for errors that are not HutchErrors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeUnexpected } from '../../src/util/unexpected';

test('a failed system call reads as what happened to which file, no stack', () => {
  const e = Object.assign(new Error("ENOENT: no such file or directory, open '/x/y'"), { code: 'ENOENT', syscall: 'open', path: '/x/y' });
  assert.is(describeUnexpected(e, false), '/x/y: no such file or directory (open, ENOENT)\n  hint: HUTCH_DEBUG=1 shows where it happened');
  assert.match(describeUnexpected(e, true), /^\/x\/y: no such file or directory \(open, ENOENT\)\nError: ENOENT[^\n]*\n\s+at /);
});

test('anything else is an internal error: the message, the stack only in debug', () => {
  const e = new TypeError('x is not a function');
  const plain = describeUnexpected(e, false);
  assert.is(plain, 'internal error: x is not a function\n  hint: this is a bug in hutch; HUTCH_DEBUG=1 prints the stack');
  assert.not.match(plain, /\s+at /);
  assert.match(describeUnexpected(e, true), /^internal error: x is not a function\nTypeError: x is not a function\n\s+at /);
  assert.is(describeUnexpected('plain string', false).split('\n')[0], 'internal error: plain string');
});

test.run();
